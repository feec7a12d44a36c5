"""The bad-input matrix and the browser tests, run against the simulated Space (tests/test_space.py): the real
``python app.py`` serving every slot from a simulated Hugging Face cache of the Space's Hub checkpoints."""

from __future__ import annotations

import pytest

from . import test_browser
from .test_bad_input import (api, bad_files, matrix, test_every_endpoint_serves_the_next_request,  # noqa: F401
                             test_hostile_inputs_are_rejected_with_a_message,
                             test_no_traceback_no_internal_error_anywhere)
from .test_browser import test_tab_main_action_in_the_browser  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def app_url(space_app) -> str:
    return space_app.url


@pytest.fixture(scope="module")
def client(space_client):
    return space_client


@pytest.fixture(scope="module")
def tiny_models():
    """Nothing to point anywhere: the Space app resolves every slot from the simulated Hub cache."""
    yield


@pytest.fixture(autouse=True)
def space_screenshots(monkeypatch):
    """The Space's screenshots beside, not over, the offline app's."""
    monkeypatch.setattr(test_browser, "SHOTS", test_browser.SHOTS / "space")
