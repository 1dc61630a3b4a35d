"""One screen per phase (a Textual mode each), plus dialogs."""

from mlwizard.tui.screens.data import DataScreen
from mlwizard.tui.screens.deploy import DeployScreen
from mlwizard.tui.screens.dialogs import HelpScreen, NewProjectScreen
from mlwizard.tui.screens.discovery import DiscoveryScreen
from mlwizard.tui.screens.model import ModelScreen
from mlwizard.tui.screens.operations import OperationsScreen

PHASE_SCREENS = {
    "discovery": DiscoveryScreen,
    "data": DataScreen,
    "model": ModelScreen,
    "deploy": DeployScreen,
    "operations": OperationsScreen,
}

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
