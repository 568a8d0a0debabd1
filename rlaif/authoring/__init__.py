"""Tools for people who write constitutions, in the order they are used: `lint` (what may not work as
meant), `preview` (what the model sees, and its size), `trial` (each principle as the judge's, against
human labels; two constitutions against each other) and `audit` (what a run's pairs reward)."""
