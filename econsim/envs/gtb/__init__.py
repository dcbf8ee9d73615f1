"""Gather-Trade-Build economy (SPEC §6): map, continuous double auction and the game kernel."""

from econsim.envs.gtb.game import GTB, SPATIAL_CHANNELS, Params, State
from econsim.envs.gtb.market import Market
from econsim.envs.gtb.world import World, load_world, map_names

__all__ = ["GTB", "SPATIAL_CHANNELS", "Market", "Params", "State", "World", "load_world",
           "map_names"]
