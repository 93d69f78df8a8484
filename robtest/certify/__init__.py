"""Certified lower bounds beside the attack's upper bound: the bound engine.

An attack can only fail to find an adversarial example; a certificate proves there is none. :func:`certify`
bounds the margins ``z_y − z_j`` of a traced ReLU network over the ε-ball (L∞ or L2, intersected with the data
box) by interval bound propagation, CROWN's back-substituted linear bounds (optionally with α-CROWN's optimised
slopes), or exactly by a MILP (scipy's HiGHS), in plain torch on the model's device (auto_LiRPA pins old
torch and pytest versions). :class:`IBPTrainer` trains models that certify (Gowal et al. 2018), through
``train_classifier(..., adversarial="ibp")``.

One module per idea: ``graph`` (tracing), ``ball`` (the input set), ``ibp``, ``backsub`` and ``crown``
(bounds), ``milp`` (the exact mode), ``verify`` (the public function), ``training`` (IBP training).
"""

from robtest.certify.graph import SUPPORTED, Graph, trace
from robtest.certify.training import IBPTrainer
from robtest.certify.verify import METHODS, Certificate, certify, outcomes

__all__ = ["METHODS", "SUPPORTED", "Certificate", "Graph", "IBPTrainer", "certify", "outcomes", "trace"]
