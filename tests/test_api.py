"""The HTTP API (engine.api) on the session's tiny catalog: FastAPI's TestClient for every endpoint,
every row of the bad-input table and the API's own bad requests, plus one real uvicorn process.

Answers must equal ``engine.search.search`` and the CLI's; every bad input must be a 4xx JSON error
``{"error": {"code", "message"}}`` with the CLI's message, never a 500; uploads are never written
to disk.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from e2e.api_load import ApiServer, Sample, Workload, drive, percentiles, summarise
from engine.api import create_app
from engine.bad_inputs import BAD_INPUTS, BadInput, bomb_png, case
from engine.cli import main
from engine.imageio import MAX_UPLOAD_BYTES, load_image
from engine.search import search

ids = [row.case for row in BAD_INPUTS]


@pytest.fixture(scope="module")
def client(tiny_catalog) -> TestClient:
    with TestClient(create_app("tiny")) as c:
        yield c


@pytest.fixture(scope="module")
def query_image(tiny_catalog) -> bytes:
    iq = tiny_catalog.table("image_queries")
    return (tiny_catalog.world_dir / iq["image_path"].iat[0]).read_bytes()


def upload(data: bytes, name: str = "photo.jpg") -> dict:
    return {"image": (name, data, "application/octet-stream")}


def assert_error(resp, status: int, code: str | None = None, message: str = "") -> dict:
    """A JSON error of the one shape, with no traceback anywhere."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body["error"]) >= {"code", "message"}, body
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    if code:
        assert body["error"]["code"] == code, body
    assert message in body["error"]["message"], body
    return body["error"]


def engine_dict(catalog, result) -> dict:
    return result.to_dict(catalog.item_ids)


# -- happy paths -------------------------------------------------------------------------------
def test_health_names_the_catalog_and_its_steps(client, tiny_catalog):
    resp = client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["ok"] is True and body["catalog"] == "tiny" and body["items"] == 600
    assert body["built_at"] == tiny_catalog.manifest["built_at"]
    assert {"world", "lexical", "sbert", "clip", "recommend"} <= set(body["steps"])
    assert body["version"] and "error" not in body
    assert client.get("/health", params={"deep": "true"}).json()["ok"] is True


@pytest.mark.parametrize("method", [None, "bm25", "sbert", "fusion-late"])
def test_text_search_equals_the_engine(client, tiny_catalog, method):
    body = {"query": "red leather boots", "top_k": 7}
    if method:
        body["method"] = method
    resp = client.post("/search/text", json=body)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    expected = engine_dict(tiny_catalog, search(tiny_catalog, method or "hybrid",
                                                text=body["query"], k=7))
    assert got["method"] == (method or "hybrid") and got["catalog"] == "tiny"
    assert got["item_ids"] == expected["item_ids"] and len(got["item_ids"]) == 7
    assert got["scores"] == expected["scores"] and got["notes"] == expected["notes"]
    assert set(got["timings_ms"]) == set(expected["timings_ms"])
    by_id = tiny_catalog.items.set_index("item_id")
    for rank, item in enumerate(got["items"], 1):
        assert item["rank"] == rank and item["item_id"] == got["item_ids"][rank - 1]
        assert item["title"] == by_id.loc[item["item_id"], "title"]
        assert item["price"] == pytest.approx(by_id.loc[item["item_id"], "price"])
        assert item["image_url"] == f"/items/{item['item_id']}/image"


def test_text_search_matches_the_cli_json(client, tiny_catalog, capsys):
    assert main(["search", "--catalog", "tiny", "--method", "tfidf", "--query", "wool hat",
                 "--top-k", "5", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    api = client.post("/search/text", json={"query": "wool hat", "method": "tfidf",
                                            "top_k": "5"}).json()
    for key in ("query", "method", "item_ids", "scores", "notes"):
        assert api[key] == cli[key], key
    assert api["interpretation"] == cli["interpretation"]  # the same understanding
    assert "wool" in api["interpretation"]["label"], api["interpretation"]


@pytest.mark.parametrize("method", [None, "colour", "fusion-mlp"])
def test_image_search_equals_the_engine(client, tiny_catalog, query_image, method):
    data = {"top_k": "6"} | ({"method": method} if method else {})
    resp = client.post("/search/image", files=upload(query_image), data=data)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    expected = engine_dict(tiny_catalog, search(tiny_catalog, method or "clip",
                                                image=load_image(query_image), k=6))
    assert got["method"] == (method or "clip") and got["query"] is None
    assert got["item_ids"] == expected["item_ids"] and got["scores"] == expected["scores"]
    assert "decode" in got["timings_ms"]


def test_image_notes_come_back(client):
    resp = client.post("/search/image", files=upload(case("image-exif-rotated").value()))
    assert resp.status_code == 200 and "rotated per EXIF" in resp.json()["notes"]


@pytest.mark.parametrize("method, weight", [(None, "0.5"), ("fusion-late", "0.2"),
                                            ("clip", "1")])
def test_multimodal_search_equals_the_engine(client, tiny_catalog, query_image, method, weight):
    data = {"query": "in red", "image_weight": weight, "top_k": "8"}
    resp = client.post("/search/multimodal", files=upload(query_image),
                       data=data | ({"method": method} if method else {}))
    assert resp.status_code == 200, resp.text
    got = resp.json()
    expected = engine_dict(tiny_catalog, search(
        tiny_catalog, method or "clip", text="in red", image=load_image(query_image), k=8,
        image_weight=float(weight)))
    assert got["query"] == "in red" and got["method"] == (method or "clip")
    assert got["item_ids"] == expected["item_ids"] and got["scores"] == expected["scores"]


def test_recommend_matches_the_cli(client, tiny_catalog, capsys):
    inter = tiny_catalog.table("interactions")
    user = inter.loc[inter["split"] == "train", "user_id"].iat[0]
    assert main(["recommend", "--catalog", "tiny", "--method", "als", "--user", user,
                 "--top-k", "5", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    resp = client.get(f"/recommend/{user}", params={"method": "als", "top_k": 5})
    assert resp.status_code == 200, resp.text
    api = resp.json()
    for key in ("user_id", "method", "item_ids", "scores", "notes"):
        assert api[key] == cli[key], key
    assert [i["item_id"] for i in api["items"]] == api["item_ids"] and not api["notes"]
    assert client.get(f"/recommend/{user}").json()["method"] == "hybrid"  # the CLI's default


def test_unknown_users_get_cold_start_recommendations_and_a_note(client, capsys):
    assert main(["recommend", "--catalog", "tiny", "--user", "nobody", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    resp = client.get("/recommend/nobody")
    assert resp.status_code == 200
    body = resp.json()
    assert body["item_ids"] == cli["item_ids"] and len(body["item_ids"]) == 10
    assert body["notes"] == cli["notes"] and "has no history" in body["notes"][0]


def test_methods_lists_every_method_with_what_it_takes_here(client, capsys):
    assert main(["methods"]) == 0
    cli_names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    body = client.get("/methods").json()
    by_name = {m["name"]: m for m in body["methods"]}
    assert list(by_name) == cli_names
    assert by_name["bm25"]["available"] == ["text"] and not by_name["bm25"]["multimodal"]
    assert by_name["clip"]["available"] == ["image", "text"] and by_name["clip"]["multimodal"]
    assert body["defaults"] == {"text": "hybrid", "image": "clip", "multimodal": "clip"}
    assert "hybrid" in body["recommenders"] and "als" in body["recommenders"]


def test_item_images_are_served_from_the_catalog(client, tiny_catalog):
    item = tiny_catalog.item_ids[3]
    resp = client.get(f"/items/{item}/image")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
    assert resp.content == tiny_catalog.image_path(3).read_bytes()
    assert_error(client.get("/items/nope/image"), 404, "unknown_item", "No item 'nope'")


def test_openapi_docs_respond(client):
    assert client.get("/docs").status_code == 200 and "swagger" in client.get("/docs").text
    spec = client.get("/openapi.json").json()
    for path in ("/search/text", "/search/image", "/search/multimodal", "/recommend/{user_id}",
                 "/methods", "/health", "/items/{item_id}/image"):
        assert path in spec["paths"], path
    form = spec["paths"]["/search/image"]["post"]["requestBody"]["content"]
    assert form["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_scripts_from_the_server_not_a_cdn(client, page):
    """The machine may have no internet: every script and style the page names is served here."""
    import re

    html = client.get(page).text
    urls = re.findall(r'(?:src|href)=["\']?([^"\' >]+)', html)
    assets = [u for u in urls if u.endswith((".js", ".css"))]
    assert assets and all(u.startswith("/") for u in assets), assets
    for url in assets:
        r = client.get(url)
        assert r.status_code == 200 and len(r.content) > 10_000, url


# -- every row of the bad-input table ----------------------------------------------------------
def _api_call(client: TestClient, row: BadInput):
    v = row.value()
    if row.kind == "query":
        return client.post("/search/text", json={"query": v, "method": "bm25"})
    if row.kind == "top_k":
        return client.post("/search/text", json={"query": "leather boots", "top_k": v})
    if row.kind == "method":
        return client.post("/search/text", json={"query": "leather boots", "method": v})
    if row.kind == "user":
        return client.get(f"/recommend/{quote(v, safe='')}", params={"method": "als"})
    if row.kind == "recommender":
        return client.get("/recommend/u000001", params={"method": v})
    return client.post("/search/image", files=upload(v), data={"method": "clip"})


@pytest.mark.parametrize("row", BAD_INPUTS, ids=ids)
def test_every_bad_input_is_a_clear_4xx_or_an_answer(client, row: BadInput):
    resp = _api_call(client, row)
    assert "Traceback" not in resp.text
    if row.case == "user-empty":  # "/recommend/" has no user id: no such endpoint
        assert_error(resp, 404, "not_found", "No such endpoint")
        return
    if row.expect == "refuse":
        assert_error(resp, 400, None, row.message)
        return
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert len(body["item_ids"]) == len(body["scores"]) == len(body["items"])
    assert body["item_ids"] or body["notes"]
    if row.message:
        assert row.message in " ".join(body["notes"])


def _cli_error(args: list[str], capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    return err.removeprefix("error: ")


@pytest.mark.parametrize("row", [r for r in BAD_INPUTS if r.expect == "refuse"],
                         ids=[r.case for r in BAD_INPUTS if r.expect == "refuse"])
def test_refusals_carry_the_clis_exact_message(client, tmp_path, capsys, row: BadInput):
    v = row.value()
    base = ["search", "--catalog", "tiny", "--json"]
    if row.kind == "query":
        args = base + ["--method", "bm25", "--query", v]
    elif row.kind == "top_k":
        args = base + ["--query", "leather boots", "--top-k", str(v)]
    elif row.kind == "method":
        args = base + ["--method", v, "--query", "leather boots"]
    elif row.kind == "recommender":
        args = ["recommend", "--catalog", "tiny", "--method", v, "--user", "u000001"]
    else:
        (tmp_path / "q").write_bytes(v)
        args = base + ["--method", "clip", "--image", str(tmp_path / "q")]
    cli = _cli_error(args, capsys)
    if row.kind == "top_k":  # the CLI reads every top-k as text: compare with the same text
        resp = client.post("/search/text", json={"query": "leather boots", "top_k": str(v)})
    else:
        resp = _api_call(client, row)
    assert resp.json()["error"]["message"] == cli


# -- the API's own bad requests ----------------------------------------------------------------
def _noisy_png(width: int, height: int) -> bytes:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("body, status, code, message", [
    ({"query": "x" * 5000}, 400, "bad_query", "5,000 characters long"),
    ({"query": "boots", "top_k": -1}, 400, "bad_query", "Top-k must be from 1 to 500 (got -1)"),
    ({"query": "boots", "top_k": "abc"}, 400, "bad_query", "whole number from 1 to 500"),
    ({"query": "boots", "top_k": 10**9}, 400, "bad_query", "got 1000000000"),
    ({"query": "boots", "top_k": 0}, 400, "bad_query", "got 0"),
    ({"query": "boots", "top_k": True}, 400, "bad_query", "whole number from 1 to 500"),
    ({"query": "boots", "top_k": [3]}, 400, "bad_query", "(got [3])"),
    ({"query": "boots", "method": "colour"}, 400, "bad_query", "needs a image query"),
    ({"query": "boots", "method": "bm26"}, 400, "unknown_method", "valid: "),
    ({"query": 5}, 422, "invalid_request", "JSON field 'query'"),
    ({"top_k": 5}, 422, "invalid_request", "Missing JSON field 'query'"),
    ({"query": "boots", "topk": 5}, 422, "invalid_request", "Unknown JSON field 'topk'"),
    ({"query": "boots", "catalog": "nope"}, 404, "unknown_catalog", "built: "),
    ({"query": "boots", "catalog": "../etc"}, 400, "bad_input", "invalid catalog name"),
])
def test_bad_text_requests(client, body, status, code, message):
    assert_error(client.post("/search/text", json=body), status, code, message)


def test_bad_json_and_wrong_content(client):
    assert_error(client.post("/search/text", content=b"{oops",
                             headers={"content-type": "application/json"}),
                 422, "invalid_request", "not valid JSON")
    assert_error(client.post("/search/text", json=["boots"]), 422, "invalid_request",
                 "must be a JSON object")
    assert_error(client.post("/search/text", content=b'{"query": "boots"}'), 422,
                 "invalid_request", "Content-Type: application/json")
    assert_error(client.post("/search/text", content=b"[" * 100_000,
                             headers={"content-type": "application/json"}),
                 400, "bad_request", "could not be read as JSON")
    assert_error(client.post("/search/text", content=b"x" * (2 * 1024 * 1024),
                             headers={"content-type": "application/json"}),
                 413, "too_large", "larger than 1 MB")
    assert_error(client.post("/search/image", json={"image": "abc"}), 415,
                 "unsupported_media_type", "multipart/form-data")


def test_bad_image_requests(client, query_image):
    img = upload(query_image)
    assert_error(client.post("/search/image", data={"top_k": "3"},
                             files={"other": ("x", b"x", "text/plain")}),
                 422, "invalid_request", "Unknown form field 'other'")
    assert_error(client.post("/search/image", files={"method": (None, "clip")}), 422,
                 "invalid_request", "Missing form field 'image'")
    assert_error(client.post("/search/image", files=img, data={"method": "bm25"}), 400,
                 "bad_query", "Method 'bm25' needs a text query")
    assert_error(client.post("/search/image", files=img, data={"top_k": "-1"}), 400,
                 "bad_query", "Top-k must be from 1")
    assert_error(client.post("/search/image", files=upload(bomb_png())), 400, "bad_image",
                 "far too large")
    assert_error(client.post("/search/multimodal", files=img, data={"image_weight": "0.5"}),
                 422, "invalid_request", "Missing form field 'query'")
    assert_error(client.post("/search/multimodal", files=img, data={"query": " \x00 "}), 400,
                 "bad_query", "Type something")
    assert_error(client.post("/search/multimodal", files=img,
                             data={"query": "red", "image_weight": "2"}),
                 400, "bad_query", "image weight must be from 0 to 1")
    assert_error(client.post("/search/multimodal", files=img,
                             data={"query": "red", "method": "rrf"}),
                 400, "bad_query", "cannot weigh a text and an image together")


def test_oversize_uploads_are_refused_with_413(client):
    just_over = b"\xff\xd8\xff" + b"\0" * MAX_UPLOAD_BYTES  # the image part alone is too big
    assert_error(client.post("/search/image", files=upload(just_over)), 413, "too_large",
                 "The file is larger than 20 MB")
    way_over = b"\0" * (MAX_UPLOAD_BYTES + 2 * 1024 * 1024)  # the declared length is too big
    assert_error(client.post("/search/image", files=upload(way_over)), 413, "too_large",
                 "The request is larger than 21 MB")

    def chunked():  # no Content-Length: counted while it streams in
        yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x\"\r\n\r\n"
        for _ in range(24):
            yield b"\0" * (1024 * 1024)

    resp = client.post("/search/image", content=chunked(),
                       headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error(resp, 413, "too_large", "larger than")


def test_other_bad_requests(client):
    assert_error(client.get("/nowhere"), 404, "not_found", "No such endpoint: GET /nowhere")
    assert_error(client.get("/search/text"), 405, "method_not_allowed", "GET is not allowed")
    assert_error(client.get("/recommend/u1", params={"top_k": "ten"}), 400, "bad_query",
                 "whole number")
    assert_error(client.get("/methods", params={"catalog": "nope"}), 404, "unknown_catalog")
    assert_error(client.get("/health", params={"catalog": "nope"}), 404, "unknown_catalog")


# -- catalogs that cannot serve a request ------------------------------------------------------
def test_a_missing_catalog_is_503_with_the_build_command(tiny_catalog):
    with TestClient(create_app("nope")) as c:
        resp = c.get("/health")
        assert resp.status_code == 503 and resp.json()["ok"] is False
        err = assert_error(resp, 503, "artifacts_unavailable", "No built artifacts for 'nope'")
        assert err["fix"] == "python -m engine build --preset PRESET --name nope"
        err = assert_error(c.post("/search/text", json={"query": "boots"}), 503,
                           "artifacts_unavailable")
        assert err["fix"].startswith("python -m engine build")


@pytest.fixture
def limited_client(tiny_catalog, monkeypatch):
    """The tiny catalog as if its ranker and recommenders could not be built."""
    import copy

    from engine.catalog import Catalog

    manifest = copy.deepcopy(tiny_catalog.manifest)
    manifest["steps"]["ranker"]["info"]["unavailable"] = "only 3 training queries"
    manifest["steps"]["recommend"]["info"]["unavailable"] = "the catalog has no interactions"
    limited = Catalog("tiny", tiny_catalog.store, manifest)
    app = create_app("tiny")
    monkeypatch.setattr(app.state.pool, "get", lambda name=None: limited)
    with TestClient(app) as c:
        yield c


def test_unbuilt_methods_and_recommenders_are_409(limited_client):
    err = assert_error(limited_client.post("/search/text", json={"query": "boots",
                                                                 "method": "hybrid"}),
                       409, "method_not_built", "Method 'hybrid' is not built")
    assert "bm25" in err["message"]
    body = limited_client.post("/search/text", json={"query": "boots"}).json()
    assert body["method"] == "fusion-early"  # the next-best default
    assert_error(limited_client.get("/recommend/u000001"), 409, "recommenders_unavailable",
                 "has no recommenders: the catalog has no interactions")
    assert limited_client.get("/methods").json()["recommenders"] == []


def test_an_internal_error_is_a_json_500_without_a_traceback(tiny_catalog, monkeypatch):
    import engine.api.app as api_app

    def broken(*args, **kwargs):
        raise KeyError("secret internals")

    monkeypatch.setattr(api_app, "search", broken)
    with TestClient(create_app("tiny"), raise_server_exceptions=False) as c:
        err = assert_error(c.post("/search/text", json={"query": "boots"}), 500,
                           "internal_error", "Internal error (KeyError)")
        assert "secret" not in err["message"]


# -- uploads never touch the disk --------------------------------------------------------------
_WRITES: list[str] = []
_WATCH = {"on": False}


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _WATCH["on"]:  # any thread: the app runs in the client's threads
        path, mode, flags = (list(args) + [None, None, None])[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if writing:
            _WRITES.append(str(path))


sys.addaudithook(_audit)


def _watched(fn):
    _WRITES.clear()
    _WATCH["on"] = True
    try:
        return fn()
    finally:
        _WATCH["on"] = False


def test_uploads_are_never_written_to_disk(client):
    big = _noisy_png(900, 700)  # ~1.9 MB: Starlette's own parser would spool it to a file
    assert len(big) > 1024 * 1024
    for endpoint, data in (("/search/image", {}), ("/search/multimodal", {"query": "red"})):
        resp = _watched(lambda e=endpoint, d=data: client.post(e, files=upload(big), data=d))
        assert resp.status_code == 200, resp.text
        assert _WRITES == [], _WRITES


def test_the_write_watch_sees_starlettes_spooled_upload():
    """Control: the same body through Starlette's form parser is written to a temporary file."""
    import anyio
    from starlette.requests import Request

    big = _noisy_png(900, 700)
    boundary = b"xyz"
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + big + b"\r\n--xyz--\r\n")
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [
        (b"content-type", b"multipart/form-data; boundary=" + boundary)]}

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def parse():
        form = await Request(scope, receive).form()
        await form.close()

    _watched(lambda: anyio.run(parse))
    assert len(_WRITES) >= 1


# -- the command and one real server -----------------------------------------------------------
def test_the_api_never_imports_streamlit_or_the_pages():
    import subprocess

    code = ("import sys, engine.api, engine.api.server, e2e.api_load; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('streamlit', 'pages')]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_serve_refuses_a_bad_port(capsys):
    assert main(["serve", "--port", "0"]) == 2
    assert "--port must be from 1 to 65535" in capsys.readouterr().err


def test_a_real_uvicorn_process_serves_text_and_image(tiny_catalog, data_dir, tmp_path,
                                                      query_image):
    import httpx

    with ApiServer("tiny", data_dir, tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            health = http.get("/health").json()
            assert health["ok"] and health["catalog"] == "tiny"
            text = http.post("/search/text", json={"query": "leather boots", "method": "bm25",
                                                   "top_k": 5}).json()
            expected = search(tiny_catalog, "bm25", text="leather boots", k=5)
            assert text["item_ids"] == tiny_catalog.item_ids[expected.rows].tolist()
            image = http.post("/search/image", files=upload(query_image), data={"top_k": "5"})
            assert image.status_code == 200 and image.json()["method"] == "clip"
            assert len(image.json()["item_ids"]) == 5
            assert_error(http.post("/search/text", json={"query": ""}), 400, "bad_query")
        pid = server.proc.pid
    assert server.proc.poll() is not None, f"server {pid} still running"
    assert "Traceback" not in server.log_text()


# -- the load figure's summaries ---------------------------------------------------------------
def test_load_summary_counts_throughput_latency_and_errors():
    samples = [Sample("text", float(ms), 200) for ms in range(1, 101)]
    samples += [Sample("image", 50.0, 200), Sample("image", 9.0, 413, "too big"),
                Sample("text", 3.0, 0, "ConnectError")]
    level = summarise(samples, clients=8, elapsed=2.0)
    assert level["requests"] == 103 and level["errors"] == 2
    assert level["requests_per_s"] == 50.5  # 101 answered in 2 s
    assert level["latency_ms"]["n"] == 101 and level["latency_ms"]["max"] == 100.0
    assert level["by_kind"]["image"] == percentiles([50.0])
    assert level["mix"] == {"text": 101, "image": 2}
    assert level["status_codes"] == {"0": 1, "200": 101, "413": 1}
    assert level["error_samples"] == ["image: 413 too big", "text: 0 ConnectError"]
    p = percentiles(list(range(1, 101)))
    assert (p["p50"], p["p95"], p["p99"]) == (50.5, 95.0, 99.0)
    assert percentiles([]) == {"n": 0}


def test_load_driver_collects_every_threads_samples():
    """drive() with a stand-in workload: each thread's requests are all counted, none lost."""
    sent: list[int] = []
    lock = threading.Lock()

    class Counting(Workload):
        def request(self, client, rng):
            with lock:
                sent.append(1)
            threading.Event().wait(0.01)
            return Sample("text", 10.0, 200)

    level = drive("http://127.0.0.1:9", Counting([], [], "bm25", "clip", 0.0), clients=3,
                  duration=0.3)
    assert level["clients"] == 3 and level["requests"] == len(sent) > 3
    assert level["errors"] == 0 and level["latency_ms"]["p50"] == 10.0
    assert "load_average_after" in level


def test_a_committed_load_report_is_not_from_the_tiny_catalog():
    report = Path(__file__).resolve().parents[1] / "reports" / "api_load.json"
    if report.exists():
        assert json.loads(report.read_text())["catalog"]["name"] != "tiny"


def test_the_api_rows_of_docs_bad_input_name_real_tests():
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "bad-input.md").read_text()
    section = doc.split("\n## HTTP API\n")[1].split("\n## ")[0]
    names = set(re.findall(r"`(test_[a-z0-9_]+)", section))
    source = Path(__file__).read_text()
    assert len(names) >= 10
    for name in names:
        assert f"def {name}(" in source, name


def test_the_load_workload_reads_a_built_catalog(tiny_catalog):
    """e2e.api_load's client side opens the catalog it drives (its test queries and images)."""
    from e2e.api_load import workload_for

    workload, info = workload_for("tiny", None, None, 0.3)
    assert info["name"] == "tiny" and info["items"] == len(tiny_catalog.items)
    assert info["test_queries"] > 0 and info["test_query_images"] > 0
    assert workload.text_method and workload.image_method
