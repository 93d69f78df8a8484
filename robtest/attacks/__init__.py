"""Attacks as plain functions over tensors in the model's input space.

Every attack goes through one driver (``robtest.attacks._driver.run_attack``) that validates the inputs,
evaluates the model in eval mode and restores its mode, clips to ``bounds`` and verifies the ε-ball. The
registry lets markers name attacks: ``get_attack("pgd")``.
"""

from robtest.attacks._registry import AttackSpec, available_attacks, get_attack, register_attack
from robtest.attacks.apgd import apgd, apgd_t
from robtest.attacks.ensemble import auto
from robtest.attacks.fgsm import fgsm, rfgsm, step_ll
from robtest.attacks.pgd import pgd
from robtest.attacks.square import square
from robtest.attacks.transfer import transfer

__all__ = [
    "AttackSpec", "apgd", "apgd_t", "auto", "available_attacks", "fgsm", "get_attack", "pgd", "register_attack",
    "rfgsm", "square", "step_ll", "transfer",
]
