"""The NEC ID REST API end to end: every service started for real, requests over HTTP
signed by botocore, real photos (../shared/faces/test)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from bench.dataset import faces_dir
from gateway.tenancy import create_tenant
from tests.support.postgres import create_database
from tests.support.stack import SignedClient, Stack, b64, running_stack

FACES = faces_dir() / "test"
OBAMA = FACES / "face_recognition" / "obama"
BIDEN = FACES / "face_recognition" / "biden" / "biden.jpg"
MULTI = FACES / "compreface" / "_multi" / "016_8.jpg"
OBAMA_AND_BIDEN = FACES / "face_recognition" / "_multi" / "obama_and_biden.jpg"
WITH_BYSTANDER = faces_dir() / "lfw-dev" / "Alejandro_Toledo" / "Alejandro_Toledo_0003.jpg"
NO_FACE = next((FACES / "compreface" / "_noface").iterdir())


def photo(path: Path) -> str:
    return b64(path.read_bytes())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The whole scenario runs once on each store."""
    database_url = ""
    if request.param == "postgresql":
        server_url: str = request.getfixturevalue("postgres_url")
        database_url = create_database(server_url, "rest_api")
    with running_stack(
        tmp_path_factory.mktemp("stack"), database_url=database_url, rate_per_second=0
    ) as running:
        yield running


def tenant_client(stack: Stack, name: str) -> SignedClient:
    created = create_tenant(stack.deps.database, stack.deps.secrets, name)
    return SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)


@pytest.fixture(scope="module")
def tenant_a(stack: Stack) -> Iterator[SignedClient]:
    client = tenant_client(stack, "tenant-a")
    yield client
    client.close()


@pytest.fixture(scope="module")
def gallery_a(tenant_a: SignedClient) -> SignedClient:
    """Tenant A's client bound to a new gallery's API key."""
    response = tenant_a.call(
        "POST",
        "/api/galleries",
        {"name": "staff", "description": "Staff", "size": 100, "faceMinimumQualityScore": 0.5},
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["name"] == "staff"
    assert created["size"] == 100
    return tenant_a.with_api_key(created["apiKey"])


def test_full_scenario(gallery_a: SignedClient) -> None:
    client = gallery_a
    # Tags must exist before use.
    unknown = client.call(
        "POST", "/v1.1/subjects", {"face": photo(OBAMA / "obama.jpg"), "tags": ["x"]}
    )
    assert unknown.status_code == 400
    assert unknown.json()["errorType"] == "InvalidRequest"
    for name in ("passport", "licence"):
        assert client.call("POST", f"/v1.1/tags/{name}").status_code == 200
    assert client.call("GET", "/v1.1/tags").json() == ["passport", "licence"]

    registered = client.call(
        "POST", "/v1.1/subjects", {"face": photo(OBAMA / "obama.jpg"), "tags": ["passport"]}
    )
    assert registered.status_code == 201, registered.text
    body = registered.json()
    obama, first_event = body["id"], body["eventId"]
    attributes = body["attributes"]
    assert isinstance(attributes["faceQualityScore"], str)
    assert set(attributes["faceArea"]) == {"left", "top", "right", "bottom"}

    biden_registered = client.call(
        "POST", "/v1.1/subjects", {"face": photo(BIDEN), "tags": ["licence"]}
    ).json()
    biden, biden_event = biden_registered["id"], biden_registered["eventId"]
    second = client.call(
        "POST", f"/v1.1/subjects/{obama}/events", {"face": photo(OBAMA / "obama2.jpg")}
    )
    assert second.status_code == 201, second.text
    second_event = second.json()["eventId"]
    events = client.call("GET", f"/v1.1/subjects/{obama}/events").json()
    assert events == {"id": obama, "events": [{"id": first_event}, {"id": second_event}]}

    # Search: the probe's subject first, its events grouped under it.
    found = client.call("POST", "/v1.1/face/search", {"probe": photo(OBAMA / "obama2.jpg")})
    assert found.status_code == 200, found.text
    timings = dict(
        part.strip().split(";dur=") for part in found.headers["server-timing"].split(",")
    )
    assert 0 < float(timings["backend"]) < float(timings["gateway"])
    candidates = found.json()["candidates"]
    assert candidates[0]["id"] == obama
    assert {e["id"] for e in candidates[0]["events"]} == {first_event, second_event}
    assert candidates[0]["score"] == candidates[0]["events"][0]["score"] >= 7000
    assert biden not in [c["id"] for c in candidates]
    # A tag filter that only Biden's event has: Obama is not a candidate -> 404.
    filtered = client.call(
        "POST", "/v1.1/face/search", {"probe": photo(OBAMA / "obama2.jpg"), "tags": ["licence"]}
    )
    assert filtered.status_code == 404
    assert "message" in filtered.json()

    verified = client.call(
        "POST", "/v1.1/face/verify", {"id": obama, "probe": photo(OBAMA / "obama2.jpg")}
    )
    assert verified.status_code == 200
    assert verified.json()["id"] == obama
    assert verified.json()["score"] >= 7000
    rejected = client.call(
        "POST", "/v1.1/face/verify", {"id": biden, "probe": photo(OBAMA / "obama2.jpg")}
    )
    assert rejected.status_code == 404
    face_to_face = client.call(
        "POST",
        "/v1.1/face/verify",
        {"face": photo(OBAMA / "obama.jpg"), "probe": photo(OBAMA / "obama2.jpg")},
    )
    assert face_to_face.status_code == 200
    assert face_to_face.json()["score"] >= 7000

    # Update the subject: its events become D, one new A event.
    updated = client.call("PUT", f"/v1.1/subjects/{obama}", {"face": photo(OBAMA / "obama.jpg")})
    assert updated.status_code == 200, updated.text
    new_event = updated.json()["eventId"]
    listing = client.call("GET", "/v1.1/subjects", query={"dir": "asc"}).json()
    rows = [(r["id"], r["eventId"], r["status"]) for r in listing["subjects"]]
    assert (obama, first_event, "D") in rows
    assert (obama, second_event, "D") in rows
    assert (obama, new_event, "A") in rows
    assert (biden, biden_event, "A") in rows
    assert listing["total"] == len(rows) == 4
    assert listing["subjects"][0]["lastUpdated"].endswith("+00:00")
    page = client.call("GET", "/v1.1/subjects", query={"start": "1", "length": "2", "dir": "desc"})
    assert len(page.json()["subjects"]) == 2
    assert page.json()["total"] == 4
    after = client.call("POST", "/v1.1/face/search", {"probe": photo(OBAMA / "obama2.jpg")}).json()
    assert [e["id"] for e in after["candidates"][0]["events"]] == [new_event]

    # Tag rename keeps the label; delete keeps the events.
    assert client.call("PUT", "/v1.1/tags/licence", {"newName": "driver"}).status_code == 200
    by_new_name = client.call(
        "POST", "/v1.1/face/search", {"probe": photo(BIDEN), "tags": ["driver"]}
    ).json()
    assert by_new_name["candidates"][0]["id"] == biden
    assert client.call("DELETE", "/v1.1/tags/driver").status_code == 200
    assert client.call("POST", "/v1.1/face/search", {"probe": photo(BIDEN)}).status_code == 200

    # Unregister: gone from search, verify and the events listing.
    assert client.call("DELETE", f"/v1.1/subjects/{obama}").status_code == 204
    assert client.call("GET", f"/v1.1/subjects/{obama}/events").status_code == 404
    gone = client.call("POST", "/v1.1/face/search", {"probe": photo(OBAMA / "obama2.jpg")})
    assert gone.status_code == 404
    assert client.call("DELETE", f"/v1.1/subjects/{obama}").status_code == 404


def test_face_errors_use_nec_codes(gallery_a: SignedClient) -> None:
    multi = gallery_a.call("POST", "/v1.1/subjects", {"face": photo(MULTI)})
    assert multi.status_code == 400
    assert multi.json()["errorCode"] == 2003
    assert multi.json()["errorType"] == "MultipleFaces"
    none = gallery_a.call("POST", "/v1.1/subjects", {"face": photo(NO_FACE)})
    assert (none.status_code, none.json()["errorCode"]) == (400, 2001)
    missing = gallery_a.call("POST", "/v1.1/subjects", {})
    assert missing.json() == {
        "message": "face property must be provided.",
        "errorCode": 1001,
        "errorType": "InvalidRequest",
    }
    extracted = gallery_a.call("POST", "/v1.1/face/extract", {"faces": photo(MULTI), "limit": 3})
    assert extracted.status_code == 200
    assert len(extracted.json()["faces"]) == 3


def test_probes_use_the_most_prominent_face_and_say_which(
    stack: Stack, tenant_a: SignedClient
) -> None:
    created = tenant_a.call("POST", "/api/galleries", {"name": "prominence", "size": 10})
    client = tenant_a.with_api_key(created.json()["apiKey"])
    ids = {}
    for name, path in (("obama", OBAMA / "obama.jpg"), ("biden", BIDEN)):
        registered = client.call("POST", "/v1.1/subjects", {"face": photo(path)})
        assert registered.status_code == 201, registered.text
        ids[name] = registered.json()["id"]
    faces = client.call("POST", "/v1.1/face/extract", {"faces": photo(OBAMA_AND_BIDEN)})
    boxes = [face["attributes"]["faceArea"] for face in faces.json()["faces"]]

    # Two comparable faces: the probe is Biden's, nearer the centre, and the answer
    # says so.
    found = client.call("POST", "/v1.1/face/search", {"probe": photo(OBAMA_AND_BIDEN)})
    assert found.status_code == 200, found.text
    assert found.json()["candidates"][0]["id"] == ids["biden"]
    assert found.json()["attributes"]["faceArea"] in boxes
    centre_x = sum(int(found.json()["attributes"]["faceArea"][k]) for k in ("left", "right")) / 2
    assert abs(centre_x - 843) < 10
    verified = client.call(
        "POST", "/v1.1/face/verify", {"id": ids["biden"], "probe": photo(OBAMA_AND_BIDEN)}
    )
    assert verified.status_code == 200
    assert verified.json()["score"] >= 7000
    face_to_face = client.call(
        "POST", "/v1.1/face/verify", {"face": photo(OBAMA_AND_BIDEN), "probe": photo(BIDEN)}
    )
    assert face_to_face.status_code == 200
    assert face_to_face.json()["score"] >= 7000

    # Enrolment refuses the same photo: whose would it be?
    refused = client.call("POST", "/v1.1/subjects", {"face": photo(OBAMA_AND_BIDEN)})
    assert refused.status_code == 400
    assert refused.json()["errorType"] == "MultipleFaces"
    assert "comparable size" in refused.json()["message"]
    # A bystander much smaller than the subject does not make a photo ambiguous.
    accepted = client.call("POST", "/v1.1/subjects", {"face": photo(WITH_BYSTANDER)})
    assert accepted.status_code == 201, accepted.text

    # The gallery's statistics: what a threshold means at its size.
    score_map = stack.deps.extractor.score_map()
    gallery_path = f"/api/galleries/{created.json()['id']}"
    assert tenant_a.call("GET", gallery_path).json()["statistics"] == {
        "activeEvents": 3,
        "thresholdFpir1e2": score_map.threshold_for_fpir(1e-2, 3),
        "thresholdFpir1e3": score_map.threshold_for_fpir(1e-3, 3),
    }
    assert client.call("DELETE", f"/v1.1/subjects/{ids['obama']}").status_code == 204
    after = tenant_a.call("GET", gallery_path).json()["statistics"]
    assert after["activeEvents"] == 2
    assert after["thresholdFpir1e2"] == score_map.threshold_for_fpir(1e-2, 2)


def test_tenants_are_isolated(stack: Stack, gallery_a: SignedClient) -> None:
    registered = gallery_a.call("POST", "/v1.1/subjects", {"face": photo(BIDEN)}).json()
    tenant_b = tenant_client(stack, "tenant-b")
    try:
        gallery_b = tenant_b.call("POST", "/api/galleries", {"name": "b", "size": 10}).json()
        # B signing with its own credentials but A's API key: Forbidden everywhere.
        stolen = tenant_b.with_api_key(gallery_a.api_key)
        probe = {"probe": photo(BIDEN)}
        for method, path, body in [
            ("GET", "/v1.1/subjects", None),
            ("POST", "/v1.1/face/search", probe),
            ("POST", "/v1.1/face/verify", {"id": registered["id"], **probe}),
            ("DELETE", f"/v1.1/subjects/{registered['id']}", None),
            ("GET", "/v1.1/tags", None),
        ]:
            response = stolen.call(method, path, body)
            assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
        # With its own key, B sees none of A's subjects.
        own = tenant_b.with_api_key(gallery_b["apiKey"])
        assert own.call("POST", "/v1.1/face/search", probe).status_code == 404
        assert (
            own.call("POST", "/v1.1/face/verify", {"id": registered["id"], **probe}).status_code
            == 404
        )
        # Tenant management is per tenant too.
        galleries = tenant_b.call("GET", "/api/galleries").json()["galleries"]
        assert [g["name"] for g in galleries] == ["b"]
        assert tenant_b.call("GET", f"/api/galleries/{gallery_a_id(gallery_a)}").status_code == 404
    finally:
        tenant_b.close()
    # A's subject survived B's attempts.
    still = gallery_a.call(
        "POST", "/v1.1/face/verify", {"id": registered["id"], "probe": photo(BIDEN)}
    )
    assert still.status_code == 200


def gallery_a_id(client: SignedClient) -> str:
    unsigned = client.with_api_key(None)
    galleries = unsigned.call("GET", "/api/galleries").json()["galleries"]
    return str(next(g["id"] for g in galleries if g["name"] == "staff"))


def test_a_tag_is_renamed_by_post_as_published(gallery_a: SignedClient) -> None:
    assert gallery_a.call("POST", "/v1.1/tags/licence-post").status_code == 200
    renamed = gallery_a.call("POST", "/v1.1/tags/licence-post", {"newName": "id-post"})
    assert renamed.status_code == 200, renamed.text
    names = gallery_a.call("GET", "/v1.1/tags").json()
    assert "id-post" in names
    assert "licence-post" not in names
    missing = gallery_a.call("POST", "/v1.1/tags/no-such-tag", {"newName": "other"})
    assert missing.status_code == 404, missing.text
    empty = gallery_a.call("POST", "/v1.1/tags/id-post", {"newName": ""})
    assert empty.status_code == 400, empty.text
    null = gallery_a.call("POST", "/v1.1/tags/null-body", b"null")
    assert null.status_code == 400, null.text
    assert "null-body" not in gallery_a.call("GET", "/v1.1/tags").json()
    assert gallery_a.call("DELETE", "/v1.1/tags/id-post").status_code == 200


def test_awkward_tag_names_round_trip(gallery_a: SignedClient) -> None:
    name = "café & co/1 +x=y~*"
    assert gallery_a.call("POST", f"/v1.1/tags/{quote(name, safe='')}").status_code == 200
    assert name in gallery_a.call("GET", "/v1.1/tags").json()
    renamed = gallery_a.call("PUT", f"/v1.1/tags/{quote(name, safe='')}", {"newName": "plain"})
    assert renamed.status_code == 200
    assert gallery_a.call("DELETE", "/v1.1/tags/plain").status_code == 200
    # A path that normalisation would change is never routed, even with the signature of
    # its normal form (http.client sends the path exactly as given).
    signed = gallery_a.signed("GET", "/v1.1/tags")
    url = urlsplit(gallery_a.base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port)
    try:
        connection.request("GET", "/v1.1/x/../tags", headers=dict(signed.headers.items()))
        assert connection.getresponse().status == 403
    finally:
        connection.close()


def test_tenant_management(tenant_a: SignedClient) -> None:
    created = tenant_a.call(
        "POST", "/api/galleries", {"name": "visitors", "description": "v", "size": 10}
    )
    assert created.status_code == 200, created.text
    gallery = created.json()
    first_key = gallery["apiKey"]
    duplicate = tenant_a.call("POST", "/api/galleries", {"name": "visitors", "size": 10})
    assert (duplicate.status_code, duplicate.json()["errorType"]) == (400, "Duplicate")
    assert gallery["id"] in duplicate.json()["message"]

    app = tenant_a.call(
        "POST",
        "/api/applications",
        {"name": "kiosk", "galleryId": gallery["id"], "faceMinimumQualityScore": 0.6},
    )
    assert app.status_code == 200, app.text
    application = app.json()
    second_key = application["apiKey"]
    shown = tenant_a.call("GET", f"/api/applications/{application['id']}").json()
    assert shown["name"] == "kiosk"
    assert shown["apiKey"] != second_key
    assert second_key.startswith(shown["apiKey"].rstrip("…"))
    patched = tenant_a.call("PATCH", f"/api/applications/{application['id']}", {"name": "kiosk-2"})
    assert (patched.status_code, patched.json()["name"]) == (200, "kiosk-2")
    listed = tenant_a.call("GET", f"/api/galleries/{gallery['id']}").json()
    assert {a["name"] for a in listed["applications"]} == {"visitors", "kiosk-2"}

    grown = tenant_a.call("PATCH", f"/api/galleries/{gallery['id']}", {"size": 20})
    assert (grown.status_code, grown.json()["size"]) == (200, 20)
    shrunk = tenant_a.call("PATCH", f"/api/galleries/{gallery['id']}", {"size": 5})
    assert shrunk.status_code == 400
    # Bad values are the caller's error on both stores (PostgreSQL refuses NUL in text).
    for bad in (
        tenant_a.call("POST", "/api/galleries", {"name": "n", "size": 5, "description": "a\u0000"}),
        tenant_a.call("POST", "/api/galleries", {"name": "a\u0000b", "size": 5}),
        tenant_a.call("GET", "/v1.1/subjects", query={"start": "9" * 5000}),
    ):
        assert bad.status_code in (400, 403), bad.text
    edge = tenant_a.call(
        "POST", "/api/galleries", {"name": "edge", "size": 5, "faceMinimumQualityScore": 0.45}
    )
    assert edge.status_code == 200, edge.text  # the floor itself is allowed
    low = tenant_a.call(
        "POST", "/api/galleries", {"name": "low", "size": 5, "faceMinimumQualityScore": 0.2}
    )
    assert low.status_code == 400

    for key in (first_key, second_key):
        assert tenant_a.with_api_key(key).call("GET", "/v1.1/tags").status_code == 200
    assert tenant_a.call("DELETE", f"/api/applications/{application['id']}").status_code == 204
    assert tenant_a.with_api_key(second_key).call("GET", "/v1.1/tags").status_code == 403
    assert tenant_a.call("DELETE", f"/api/galleries/{gallery['id']}").status_code == 204
    assert tenant_a.with_api_key(first_key).call("GET", "/v1.1/tags").status_code == 403
    assert tenant_a.call("GET", f"/api/galleries/{gallery['id']}").status_code == 404
    health = tenant_a.call("GET", "/v1.1/health").json()
    assert health["status"] == "OK"
    assert [d["name"] for d in health["dependencies"]] == ["store", "extractor", "matcher-0"]
    assert all(d["status"] == "OK" for d in health["dependencies"])
