"""Widget-free cards rendered as one HTML element: escaping, badge, score and reason."""

from __future__ import annotations

from pages.card_html import Card, card_html, cards_html, figure_html

URI = "data:image/jpeg;base64,AAAA"


def test_catalog_text_is_escaped_never_markup():
    card = Card(image_uri=URI, title='<script>alert(1)</script> "Mug" & co', price="$5.00",
                truth_label="ground truth", attributes=("red<b>", "striped"),
                why="you bought <i>mugs</i>")
    out = card_html(card)
    assert "<script>" not in out and "<b>" not in out and "<i>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;Mug&quot; &amp; co" in out
    assert "<em>ground truth:</em> red&lt;b&gt; · striped" in out
    assert '<p class="pm-why">Why: you bought &lt;i&gt;mugs&lt;/i&gt;</p>' in out


def test_badge_score_reason_and_image_only_when_given():
    plain = card_html(Card(image_uri=URI, title="Mug", price="$5.00"))
    assert 'class="pm-new"' not in plain and "score" not in plain and "Why:" not in plain
    assert f'<img src="{URI}" alt="Mug">' in plain
    full = card_html(Card(image_uri=URI, title="Mug", price="$5.00", is_new=True, score=0.12345,
                          why="popular"))
    assert '<span class="pm-new">NEW</span>' in full and "score 0.1235" in full
    assert "Why: popular" in full


def test_only_inline_images_are_used():
    """A file path or a remote URL is never put in the page (the browser cannot read the one and
    must not fetch the other); the card keeps its text."""
    for src in ("/etc/passwd", "https://example.com/x.jpg", "javascript:alert(1)", ""):
        out = card_html(Card(image_uri=src, title="Mug", price="$5.00"))
        assert "<img" not in out and "Mug" in out


def test_a_column_has_its_style_and_every_card():
    cards = [Card(image_uri=URI, title=f"Item {i}", price="$1.00") for i in range(3)]
    out = cards_html(cards, image_px=90)
    assert out.startswith("<style>") and "--pm-img:90px" in out
    assert out.count('<div class="pm-card">') == 3


def test_a_ranked_grid_numbers_its_cards_and_sets_its_columns():
    from pages.card_html import grid_html

    cards = [Card(image_uri=URI, title=f"Item {i}", price="$1.00", rank=i + 1, score=1 / (i + 1))
             for i in range(7)]
    out = grid_html(cards, columns=4)
    assert out.startswith("<style>") and '<div class="pm-grid" style="--pm-cols:4">' in out
    assert out.count('<div class="pm-card">') == 7
    assert [f'<p class="pm-title">{i}. Item {i - 1}</p>' in out for i in range(1, 8)] == [True] * 7
    assert "score 0.3333" in out
    assert 'class="pm-title">Item' not in out  # every card has its rank


def test_history_row_escapes_and_keeps_only_inline_images():
    from pages.card_html import history_html

    out = history_html([(URI, 'Mug <b>"x"</b>', "add to cart"), ("/etc/passwd", "Hat", "view")])
    assert out.count("<figure>") == 2 and out.count("<img") == 1
    assert 'alt="Mug &lt;b&gt;&quot;x&quot;&lt;/b&gt;"' in out and "<b>" not in out
    assert "<figcaption>add to cart</figcaption>" in out and "<figcaption>view</figcaption>" in out


def test_an_unreadable_card_image_leaves_the_text(tiny_catalog, tmp_path, monkeypatch):
    """A corrupt or missing image file gives a card without an image, not a page error; a
    readable one gives a ``data:`` URI, built once per row."""
    import weakref

    from pages import shared

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    files = {0: bad, 1: tmp_path / "gone.jpg", 2: tiny_catalog.image_path(2)}
    asked = []

    def image_path(row):
        asked.append(row)
        return files[row]

    monkeypatch.setattr(shared, "_THUMBS", weakref.WeakKeyDictionary())  # nothing kept yet
    monkeypatch.setattr(tiny_catalog, "image_path", image_path)
    assert shared.card_image_uri(tiny_catalog, 0) == ""
    assert shared.card_image_uri(tiny_catalog, 1) == ""
    uri = shared.card_image_uri(tiny_catalog, 2)
    assert uri.startswith("data:image/") and shared.card_image_uri(tiny_catalog, 2) == uri
    assert asked == [0, 1, 2]  # the kept thumbnail of row 2 needed no second file lookup



def test_query_figure_is_escaped_and_only_inline():
    out = figure_html(URI, 'Query <script>"x"</script>', width_px=220)
    assert '<figure class="pm-query" style="width:220px">' in out
    assert f'<img src="{URI}"' in out and "<script>" not in out
    assert "<figcaption>Query &lt;script&gt;&quot;x&quot;&lt;/script&gt;</figcaption>" in out
    assert "<img" not in figure_html("http://example.com/a.jpg", "Query image")


def test_image_uri_is_a_small_jpeg():
    import base64
    import io

    from PIL import Image

    from engine.serving.thumbnails import image_uri

    big = Image.new("RGBA", (1000, 400), (200, 10, 10, 128))
    uri = image_uri(big, 440)
    assert uri.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as got:
        assert got.format == "JPEG" and got.size == (440, 176)
    assert big.size == (1000, 400)  # the caller's image is left as it was


def test_a_card_names_its_product_escaped():
    card = Card(image_uri=URI, title="Mug", price="$1.00", item_id='p1"><script>')
    out = card_html(card)
    assert out.startswith('<div class="pm-card" data-item="p1&quot;&gt;&lt;script&gt;">')
    assert 'data-item' not in card_html(Card(image_uri=URI, title="Mug", price="$1.00"))
