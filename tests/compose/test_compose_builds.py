"""build: what --build reads, the file it deploys afterwards, and the refusal without --build."""

import pytest
import yaml

from corral.compose import parse_compose
from corral.compose.builds import Build, read_builds, with_images
from corral.model.errors import InvalidSpec
from tests.compose.compose_helpers import compose_error

FILE = """
services:
  web:
    build: ./web
  api:
    image: reg/api:1
    build:
      context: api
      dockerfile: Dockerfile.prod
      args: [MODE=prod]
      target: runtime
      labels: {team: api}
  db:
    image: postgres
"""


def test_both_forms_are_read_in_the_file_order() -> None:
    assert read_builds(FILE) == [
        Build(service="web", context="./web"),
        Build(service="api", context="api", dockerfile="Dockerfile.prod", args={"MODE": "prod"}, target="runtime",
              labels={"team": "api"}, image="reg/api:1"),
    ]


def test_the_deployed_file_names_the_pushed_images_and_has_no_build() -> None:
    text = with_images(FILE, {"web": "127.0.0.1:5000/s_web:abc", "api": "reg/api:1"})
    services = yaml.safe_load(text)["services"]
    assert services["web"] == {"image": "127.0.0.1:5000/s_web:abc"}
    assert "build" not in services["api"] and services["db"] == {"image": "postgres"}
    assert [spec.image for spec in parse_compose(text, "s").services] == ["127.0.0.1:5000/s_web:abc", "reg/api:1", "postgres"]


def test_without_build_a_service_with_build_and_no_image_is_refused_with_the_way_out() -> None:
    error = compose_error("services:\n  web:\n    build: .\n")
    assert error.path == "services.web.build" and "corral deploy --build" in error.reason and "image:" in error.reason


def test_with_an_image_the_file_deploys_that_image() -> None:
    [api] = [s for s in parse_compose(FILE.replace("build: ./web", "image: web"), "s").services if s.name == "s_api"]
    assert api.image == "reg/api:1"


@pytest.mark.parametrize(
    ("build", "path"),
    [
        ("{context: ., ssh: [default]}", "services.web.build.ssh"),
        ("{dockerfile: a, dockerfile_inline: 'FROM x'}", "services.web.build.dockerfile_inline"),
        ("{context: ''}", "services.web.build.context"),
    ],
)
def test_a_build_it_cannot_honour_is_refused_with_its_path(build: str, path: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        read_builds(f"services:\n  web:\n    build: {build}\n")
    assert caught.value.path == path
