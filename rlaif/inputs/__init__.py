"""What a run reads: constitutions (load, imported formats, sampling), prompt sets, labelled pairwise sets."""
