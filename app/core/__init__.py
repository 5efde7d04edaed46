"""Qt-free core: images, models, learners, checkpoints, sessions, export."""
