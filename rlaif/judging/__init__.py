"""The AI judge: the engine that asks for verdicts, the judge modes, the label arithmetic, injection flags."""
