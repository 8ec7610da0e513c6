"""Training: the paper's SGD rule, its learning-rate schedule, checkpoints and the loop.

    config (alexnet.config.TrainConfig) -> plan.resolve -> state.TrainState -> loop.train
    (step.SGDStep for each batch of data.pipeline.TrainingInput)
"""
