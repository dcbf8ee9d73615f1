"""Agent brains: networks, differentiable updates, and the learning algorithms of the Diss."""
