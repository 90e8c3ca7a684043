"""Metrics: language-model numbers (`lm`) and degeneration metrics on generated text (`text`)."""
