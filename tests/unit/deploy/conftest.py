"""The rendered overlays of deploy/k8s, built once per test session.

kubectl (with its built-in kustomize) is a test requirement: without it these tests
fail, saying what to install, rather than skip, so a CI machine that lacks it cannot
pass by accident.
"""

from __future__ import annotations

import pytest

from tests.support.k8s import Manifest, Render, RenderError, render_overlay


@pytest.fixture(scope="session")
def rendered() -> Render:
    """``rendered(overlay)``: the objects ``kubectl kustomize`` builds for the overlay."""
    cache: dict[str, list[Manifest]] = {}

    def render(overlay: str) -> list[Manifest]:
        if overlay not in cache:
            try:
                cache[overlay] = render_overlay(overlay)
            except RenderError as error:
                pytest.fail(str(error), pytrace=False)
        return cache[overlay]

    return render
