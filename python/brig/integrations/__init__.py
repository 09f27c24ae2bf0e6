"""Adapters of brig's agent tools (brig.tools) to agent frameworks; each imports its
framework only when called, so that ``import brig`` needs none of them."""
