"""The topology layer: schema, validation and the address plan. Pure: no root, no I/O
beyond reading the topology and its workload files."""

from netlab.topology.model import Node, Topology
from netlab.topology.plan import LabPlan, NodePlan, OverlayPeer, plan_lab
from netlab.topology.validate import Problem, TopologyError, load_topology, parse_topology

__all__ = ["LabPlan", "Node", "NodePlan", "OverlayPeer", "Problem", "Topology", "TopologyError",
           "load_topology", "parse_topology", "plan_lab"]
