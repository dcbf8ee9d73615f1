"""econsim: agent-based economic simulation with multi-agent reinforcement learning.

Rules of each game live once, as a batch-first numpy kernel (``econsim.envs``); Mesa hosts
them as agent-based models (``econsim.model``); learners are brains (``learners``);
mechanisms change the payoffs (``mechanisms``); scenarios say which of each
(``econsim.scenario``); the runner and the CLI run scenarios and write tidy tables.
"""

__version__ = "0.1.0"
