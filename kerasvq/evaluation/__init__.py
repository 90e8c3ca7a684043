"""What the thesis reads: held-out language-model numbers (`lm`), sampled text and its verdicts
(`samples`), side-by-side comparison of versions (`comparison`) and of FFN variants
(`ffn_comparison`), the markdown report (`report`), plots and attention heatmaps (`plots`,
`attention_maps`), the model registry (`registry`) and loading a trained model back
(`trained_model`)."""
