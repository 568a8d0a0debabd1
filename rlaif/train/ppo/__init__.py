"""PPO of our own: config, math (GAE, KL, losses), rollouts, and the trainer."""
