"""A demo publisher site on the same server (`/demo-site/`), enabled in development (`make run`) or
with DEMO_SITE=1: a home page and article pages of each class, all metered by the embed, exactly as
a publisher would paste it. It talks to meter only through the embed; it has no API key. Its articles
carry the schema.org structured data that tells search engines a metered or premium article's body is
behind a wall (`isAccessibleForFree`, `hasPart`: docs/api.md), so the wall is not taken for cloaking.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, abort, current_app, render_template, url_for

bp = Blueprint("demo", __name__, url_prefix="/demo-site")


@dataclass(frozen=True)
class Story:
    slug: str
    article_id: str
    cls: str  # free | metered | premium
    rubric: str
    title: str
    lead: str
    paragraphs: tuple[str, ...]


_BODY = (
    "Paragraf pertama laporan ini menjelaskan duduk perkaranya: siapa, apa, kapan dan di mana.",
    "Paragraf berikutnya memuat keterangan narasumber dan data yang dihimpun redaksi selama peliputan.",
    "Bagian akhir tulisan menimbang dampaknya bagi pembaca dan apa yang perlu diperhatikan berikutnya.",
)

STORIES = (
    Story(
        "nato-siagakan-pasukan",
        "demo:2022-01-31:nato",
        "free",
        "Internasional",
        "NATO Siagakan Pasukan di Eropa Timur, Ketegangan di Perbatasan Ukraina Meningkat",
        "NATO menempatkan pasukan dalam status siaga dan mengirim kapal serta jet tempur tambahan ke Eropa Timur.",
        (
            "Aliansi pertahanan Atlantik Utara menyatakan menyiagakan pasukan dan menambah kapal serta jet tempur "
            "di Eropa Timur, sementara Rusia menumpuk pasukan di dekat perbatasan Ukraina.",
            "Moskow membantah berencana menyerang dan menuding Barat memperkeruh suasana; negara-negara Barat "
            "menyiapkan sanksi bila Rusia bergerak.",
            *_BODY,
        ),
    ),
    Story(
        "koran-harga-beras",
        "demo:koran:2026-01-31:beras",
        "metered",
        "Koran Tempo",
        "Harga Beras Naik di Tengah Musim Panen",
        "Pedagang di pasar induk mencatat kenaikan harga beras medium selama dua pekan terakhir.",
        _BODY,
    ),
    Story(
        "koran-transportasi",
        "demo:koran:2026-01-31:krl",
        "metered",
        "Koran Tempo",
        "Penumpang KRL Melonjak, Jadwal Ditambah",
        "Operator menambah perjalanan pada jam sibuk setelah jumlah penumpang melampaui perkiraan.",
        _BODY,
    ),
    Story(
        "majalah-tambang",
        "demo:majalah:2026-01-30:tambang",
        "metered",
        "Majalah Tempo",
        "Jejak Izin Tambang di Kawasan Hutan",
        "Penelusuran dokumen perizinan menunjukkan tumpang-tindih konsesi dengan kawasan lindung.",
        _BODY,
    ),
    Story(
        "laput-anggaran",
        "demo:laput:2026-01-30:anggaran",
        "premium",
        "Laporan Utama",
        "Laporan Utama: Ke Mana Anggaran Mengalir",
        "Liputan mendalam tentang perjalanan anggaran dari perencanaan hingga pelaksanaan.",
        _BODY,
    ),
)
BY_SLUG = {story.slug: story for story in STORIES}
BODY_CLASS = "meter-body"  # the walled part of an article page, named by its JSON-LD's cssSelector


def structured_data(story: Story) -> dict:
    """The article's schema.org NewsArticle: free articles are free; others say which part is walled."""
    data: dict = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": story.title,
        "description": story.lead,
        "articleSection": story.rubric,
        "url": url_for("demo.article", slug=story.slug, _external=True),
        "isAccessibleForFree": story.cls == "free",
    }
    if story.cls != "free":
        data["hasPart"] = {"@type": "WebPageElement", "isAccessibleForFree": False, "cssSelector": f".{BODY_CLASS}"}
    return data


@bp.get("/")
def home():
    return render_template("demo/home.html", stories=STORIES, site=current_app.config["DEMO_SITE_SLUG"])


@bp.get("/<slug>")
def article(slug: str):
    story = BY_SLUG.get(slug)
    if story is None:
        abort(404)
    return render_template(
        "demo/article.html",
        story=story,
        site=current_app.config["DEMO_SITE_SLUG"],
        structured_data=structured_data(story),
        body_class=BODY_CLASS,
    )


def init_app(app: Flask) -> None:
    app.config.setdefault("DEMO_SITE_SLUG", "demo")
    app.register_blueprint(bp)
