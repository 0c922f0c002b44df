"""A demo publisher site on the same server (`/demo-site/`), enabled in development (`make run`) or
with DEMO_SITE=1: a home page and article pages of each class, all metered by the embed, exactly as
a publisher would paste it. It talks to meter only through the embed; it has no API key.

Like a publisher's site it speaks its readers' language (Indonesian, or English with `?lang=en`, kept
in its own cookie) and tells meter.js so through `<html lang>`. Its header shows "Masuk" and
"Daftar", or "Keluar", from what the embed's answer says of the reader (`logged_in`): the home page
asks about its lead story (a free article, never counted) to learn it.

Its articles carry the schema.org structured data that tells search engines a metered or premium
article's body is behind a wall (`isAccessibleForFree`, `hasPart`: docs/api.md), so the wall is not
taken for cloaking.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, Response, abort, current_app, redirect, render_template, request, url_for

from meter.dev.demo import content as demo_content
from meter.sites.rules.sites import info_by_slug

bp = Blueprint("demo", __name__, url_prefix="/demo-site")
root = Blueprint("demo_root", __name__)
LANG_COOKIE = "demo_lang"  # the demo site's own, as a publisher keeps its own


@dataclass(frozen=True)
class Story:
    slug: str
    article_id: str
    cls: str  # free | metered | premium
    rubric: str
    title: dict[str, str]  # by language
    lead: dict[str, str]
    paragraphs: dict[str, tuple[str, ...]]


_BODY = {
    "id": (
        "Paragraf pertama laporan ini menjelaskan duduk perkaranya: siapa, apa, kapan dan di mana.",
        "Paragraf berikutnya memuat keterangan narasumber dan data yang dihimpun redaksi selama peliputan.",
        "Bagian akhir tulisan menimbang dampaknya bagi pembaca dan apa yang perlu diperhatikan berikutnya.",
    ),
    "en": (
        "The first paragraph of this report sets out the matter: who, what, when and where.",
        "The next paragraph gives the sources' accounts and the figures the newsroom gathered while reporting.",
        "The end of the piece weighs what it means for readers and what to watch for next.",
    ),
}


def _story(slug, article_id, cls, rubric, title, lead, extra=None) -> Story:
    extra = extra or {"id": (), "en": ()}
    return Story(slug, article_id, cls, rubric, title, lead, {k: (*extra[k], *_BODY[k]) for k in _BODY})


STORIES = (
    _story(
        "nato-siagakan-pasukan",
        "demo:2022-01-31:nato",
        "free",
        "Internasional",
        {
            "id": "NATO Siagakan Pasukan di Eropa Timur, Ketegangan di Perbatasan Ukraina Meningkat",
            "en": "NATO Puts Forces on Standby in Eastern Europe as Tension Rises on Ukraine's Border",
        },
        {
            "id": "NATO menempatkan pasukan dalam status siaga dan mengirim kapal serta jet tempur tambahan ke Eropa "
            "Timur.",
            "en": "NATO puts forces on standby and sends more ships and fighter jets to Eastern Europe.",
        },
        {
            "id": (
                "Aliansi pertahanan Atlantik Utara menyatakan menyiagakan pasukan dan menambah kapal serta jet tempur "
                "di Eropa Timur, sementara Rusia menumpuk pasukan di dekat perbatasan Ukraina.",
                "Moskow membantah berencana menyerang dan menuding Barat memperkeruh suasana; negara-negara Barat "
                "menyiapkan sanksi bila Rusia bergerak.",
            ),
            "en": (
                "The North Atlantic alliance said it was putting forces on standby and adding ships and fighter jets "
                "in Eastern Europe, while Russia massed troops near Ukraine's border.",
                "Moscow denied planning an attack and accused the West of stoking tension; Western governments "
                "prepared sanctions should Russia move.",
            ),
        },
    ),
    _story(
        "koran-harga-beras",
        "demo:koran:2026-01-31:beras",
        "metered",
        "Koran Tempo",
        {"id": "Harga Beras Naik di Tengah Musim Panen", "en": "Rice Prices Rise in the Middle of the Harvest"},
        {
            "id": "Pedagang di pasar induk mencatat kenaikan harga beras medium selama dua pekan terakhir.",
            "en": "Traders at the wholesale market have seen medium-grade rice prices rise for two weeks.",
        },
    ),
    _story(
        "koran-transportasi",
        "demo:koran:2026-01-31:krl",
        "metered",
        "Koran Tempo",
        {"id": "Penumpang KRL Melonjak, Jadwal Ditambah", "en": "Commuter Trains Fill Up, More Services Added"},
        {
            "id": "Operator menambah perjalanan pada jam sibuk setelah jumlah penumpang melampaui perkiraan.",
            "en": "The operator adds rush-hour trips after passenger numbers beat its forecasts.",
        },
    ),
    _story(
        "majalah-tambang",
        "demo:majalah:2026-01-30:tambang",
        "metered",
        "Majalah Tempo",
        {"id": "Jejak Izin Tambang di Kawasan Hutan", "en": "The Trail of Mining Permits in Forest Land"},
        {
            "id": "Penelusuran dokumen perizinan menunjukkan tumpang-tindih konsesi dengan kawasan lindung.",
            "en": "A search of permit records shows concessions overlapping protected areas.",
        },
    ),
    _story(
        "laput-anggaran",
        "demo:laput:2026-01-30:anggaran",
        "premium",
        "Laporan Utama",
        {"id": "Laporan Utama: Ke Mana Anggaran Mengalir", "en": "Cover Story: Where the Budget Goes"},
        {
            "id": "Liputan mendalam tentang perjalanan anggaran dari perencanaan hingga pelaksanaan.",
            "en": "An in-depth look at the budget's journey from planning to spending.",
        },
    ),
)
BY_SLUG = {story.slug: story for story in STORIES}
BODY_CLASS = "meter-body"  # the walled part of an article page, named by its JSON-LD's cssSelector


def structured_data(story: Story, lang: str) -> dict:
    """The article's schema.org NewsArticle: free articles are free; others say which part is walled."""
    data: dict = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": story.title[lang],
        "description": story.lead[lang],
        "articleSection": story.rubric,
        "url": url_for("demo.article", slug=story.slug, _external=True),
        "isAccessibleForFree": story.cls == "free",
    }
    if story.cls != "free":
        data["hasPart"] = {"@type": "WebPageElement", "isAccessibleForFree": False, "cssSelector": f".{BODY_CLASS}"}
    return data


# The demo site's own words: a publisher's site translates itself; meter's catalogs are meter's.
WORDS = {
    "id": {
        "home": "Beranda",
        "latest": "Berita dan laporan terbaru",
        "login": "Masuk",
        "register": "Daftar",
        "logout": "Keluar",
        "subscribe": "Langganan: halaman berlangganan penerbit ada di sini.",
        "footer": "Situs penerbit contoh untuk meter. Artikel di sini fiktif, kecuali ringkasan berita NATO/Ukraina.",
        "other": "English",
    },
    "en": {
        "home": "Home",
        "latest": "Latest news and reports",
        "login": "Log in",
        "register": "Register",
        "logout": "Log out",
        "subscribe": "Subscribe: the publisher's subscription page would be here.",
        "footer": "A sample publisher site for meter. Its articles are made up, except the NATO/Ukraine summary.",
        "other": "Bahasa Indonesia",
    },
}


def _lang() -> str:
    asked = request.args.get("lang")
    if asked in WORDS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in WORDS else "id"


def _page(template: str, **context) -> Response:
    lang = _lang()
    page = render_template(
        template,
        lang=lang,
        words=WORDS[lang],
        other_lang="en" if lang == "id" else "id",
        site=current_app.config["DEMO_SITE_SLUG"],
        **context,
    )
    response = Response(page, mimetype="text/html")
    if request.args.get("lang") in WORDS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


@bp.get("/")
def home():
    return _page("demo/home.html", stories=STORIES[1:], lead=STORIES[0])  # the lead is not listed again


@bp.get("/<slug>")
def article(slug: str):
    story = BY_SLUG.get(slug)
    if story is None:
        abort(404)
    return _page(
        "demo/article.html",
        story=story,
        structured_data=structured_data(story, _lang()),
        body_class=BODY_CLASS,
        content_url=_content_url(story),
    )


def _content_url(story: Story) -> str | None:
    """With the site's content protection on, the page carries no body but where to fetch it with a grant."""
    site = info_by_slug(current_app.config["DEMO_SITE_SLUG"])
    if story.cls == "free" or site is None or not site.content_protection:
        return None
    return url_for("demo.article_content", slug=story.slug, lang=_lang())


@bp.get("/content/<slug>")
def article_content(slug: str):
    """The body of a story, for a request with a valid grant for it (content.py)."""
    story = BY_SLUG.get(slug)
    if story is None:
        abort(404)
    slug_of_site = current_app.config["DEMO_SITE_SLUG"]
    return demo_content.body(
        request.headers.get("Authorization"), slug_of_site, story.article_id, story.paragraphs[_lang()]
    )


@root.get("/")
def to_the_demo():
    """The demo site is the development server's home: a page with no `next` offers the site's first
    origin, which under `make run` is this server."""
    return redirect(url_for("demo.home"))


def init_app(app: Flask) -> None:
    app.config.setdefault("DEMO_SITE_SLUG", "demo")
    app.register_blueprint(bp)
    app.register_blueprint(root)
