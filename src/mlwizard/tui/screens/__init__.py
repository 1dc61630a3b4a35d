"""One screen per phase (a Textual mode each), plus dialogs."""

from mlwizard.core.runner import PHASE_NAMES
from mlwizard.tui.screens.data import DataScreen
from mlwizard.tui.screens.deploy import DeployScreen
from mlwizard.tui.screens.dialogs import HelpScreen, NewProjectScreen
from mlwizard.tui.screens.discovery import DiscoveryScreen
from mlwizard.tui.screens.model import ModelScreen
from mlwizard.tui.screens.operations import OperationsScreen

_SCREENS = (DiscoveryScreen, DataScreen, ModelScreen, DeployScreen, OperationsScreen)
# In the phase table's order; every phase of the core has its screen.
PHASE_SCREENS = {name: next(s for s in _SCREENS if name == s.PHASE) for name in PHASE_NAMES}

__all__ = [
    "PHASE_SCREENS",
    "DataScreen",
    "DeployScreen",
    "DiscoveryScreen",
    "HelpScreen",
    "ModelScreen",
    "NewProjectScreen",
    "OperationsScreen",
]
