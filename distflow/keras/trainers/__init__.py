"""Training for `keras.Model`, laid out as Keras 3's `keras/src/trainers/`.

`data_adapters` (arrays and data sets to batches), `compile_utils` (the losses and
metrics given to `compile`, per output), `trainer` (`compile`, metrics, the public
`train_step`/`test_step`/`predict_step`, the model's strategy) and `loops`
(`fit`, `evaluate`, `predict`, `*_on_batch`).
"""
