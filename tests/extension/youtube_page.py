"""A page with the comment markup of YouTube's watch page (2026), for the extension's browser tests.

Each comment is rendered either by the current renderer (``ytd-comment-view-model``, its text in a
``yt-attributed-string#content-text``) or by the older one (``ytd-comment-renderer``, a
``yt-formatted-string#content-text``), inside a ``ytd-comment-thread-renderer`` whose replies appear when
the page's script opens them; later comments are appended by the page's script, as scrolling does. The
page's own script also beats a heartbeat, so a test can tell that the page keeps running. Every comment
carries ``data-fixture-id`` for the test; the extension does not read it."""

import html
from dataclasses import dataclass, field

from tests.extension.browser import extension_limits

MAX_TEXT_CHARS = extension_limits()["maxChars"]  # what the extension sends of a longer comment
TRANSPARENT_PIXEL = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="


@dataclass(frozen=True)
class Comment:
    """One comment: ``parts`` are its text pieces and emoji (``Emoji``) in order; ``legacy`` renders it with
    the older ``ytd-comment-renderer``."""

    comment_id: str
    parts: tuple["str | Emoji", ...]
    author: str = "@viewer"
    legacy: bool = False

    @property
    def text(self) -> str:
        """What the reader sees (an emoji image as its alt text)."""
        return "".join(part.alt if isinstance(part, Emoji) else part for part in self.parts)

    @property
    def sent_text(self) -> str:
        """What the extension sends: the text trimmed and cut to MAX_TEXT_CHARS code points."""
        return self.text.strip()[:MAX_TEXT_CHARS]


@dataclass(frozen=True)
class Emoji:
    """A custom emoji, which YouTube renders as an image with the emoji as its alt text."""

    alt: str


@dataclass(frozen=True)
class Thread:
    comment: Comment
    replies: tuple[Comment, ...] = field(default_factory=tuple)  # hidden until fixture.openReplies(id)


def text_markup(comment: Comment) -> str:
    pieces = []
    for part in comment.parts:
        if isinstance(part, Emoji):
            alt = html.escape(part.alt)
            pieces.append(f'<img class="small-emoji emoji" alt="{alt}" src="{TRANSPARENT_PIXEL}">')
        else:
            pieces.append(html.escape(part))
    return "".join(pieces)


def comment_markup(comment: Comment, video_id: str) -> str:
    permalink = f"/watch?v={video_id}&amp;lc={comment.comment_id}"
    author = html.escape(comment.author)
    if comment.legacy:
        return (
            f'<ytd-comment-renderer id="comment" class="style-scope ytd-comment-thread-renderer" '
            f'data-fixture-id="{comment.comment_id}"><div id="body"><div id="author-thumbnail"></div>'
            f'<div id="main"><div id="header"><div id="header-author"><h3><a id="author-text" '
            f'href="/{author}"><span>{author}</span></a></h3><yt-formatted-string '
            f'class="published-time-text"><a href="{permalink}">3 days ago</a></yt-formatted-string>'
            "</div></div>"
            f'<div id="comment-content"><ytd-expander id="expander"><div id="content">'
            f'<yt-formatted-string id="content-text" class="style-scope ytd-comment-renderer">'
            f"{text_markup(comment)}</yt-formatted-string></div></ytd-expander></div>"
            '<div id="action-buttons">12 likes</div></div></div></ytd-comment-renderer>'
        )
    return (
        f'<ytd-comment-view-model id="comment" class="style-scope ytd-comment-thread-renderer" '
        f'data-fixture-id="{comment.comment_id}"><div id="body"><div id="author-thumbnail"></div>'
        f'<div id="main"><div id="header"><div id="header-author"><h3><a id="author-text" href="/{author}">'
        f'<span>{author}</span></a></h3><span id="published-time-text"><a href="{permalink}">2 days ago</a>'
        '</span></div></div><div id="expander"><div id="content">'
        '<yt-attributed-string id="content-text" slot="content" user-input="">'
        '<span class="yt-core-attributed-string yt-core-attributed-string--white-space-pre-wrap" dir="auto" '
        f'role="text">{text_markup(comment)}</span></yt-attributed-string></div></div>'
        '<div id="action-buttons">3 likes</div></div></div></ytd-comment-view-model>'
    )


def thread_markup(thread: Thread, video_id: str) -> str:
    """A thread; its replies wait in a <template> (outside the document's tree) until opened."""
    thread_id = thread.comment.comment_id
    replies = "".join(comment_markup(reply, video_id) for reply in thread.replies)
    return (
        f'<ytd-comment-thread-renderer class="style-scope ytd-item-section-renderer" '
        f'data-fixture-thread="{thread_id}">{comment_markup(thread.comment, video_id)}'
        '<div id="replies"><ytd-comment-replies-renderer><div id="expander"><div id="expander-contents">'
        f'<div id="contents"></div></div></div><template class="fixture-replies">{replies}</template>'
        "</ytd-comment-replies-renderer></div></ytd-comment-thread-renderer>"
    )


def threads_markup(threads: list[Thread], video_id: str) -> str:
    return "".join(thread_markup(thread, video_id) for thread in threads)


PAGE_STYLE = """
body { margin: 0; font: 14px/20px Roboto, Arial, sans-serif; color: #0f0f0f; background: #fff; }
ytd-watch-flexy { display: block; max-width: 860px; margin: 0 auto; padding: 16px 24px; }
#player { height: 160px; background: #111; border-radius: 12px; color: #aaa; display: grid;
          place-items: center; }
ytd-watch-metadata h1 { font-size: 20px; margin: 12px 0 24px; }
ytd-comment-thread-renderer, ytd-comment-view-model, ytd-comment-renderer { display: block; }
#body { display: flex; gap: 16px; margin-bottom: 16px; }
#author-thumbnail { width: 40px; height: 40px; border-radius: 50%; background: #c5cae9; flex: none; }
#main { flex: 1; min-width: 0; }
#header-author { display: flex; align-items: center; gap: 6px; font-size: 12px; }
#header-author h3 { margin: 0; font-size: 13px; } #header-author a { color: inherit; text-decoration: none; }
#published-time-text a, .published-time-text a { color: #606060; text-decoration: none; }
#content-text { display: block; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 80px;
                overflow: hidden; }
#action-buttons { color: #606060; font-size: 12px; }
ytd-comment-replies-renderer #contents { margin-left: 56px; }
#heartbeat { color: #909090; font-size: 11px; }
img.emoji { width: 16px; height: 16px; border-radius: 50%; background: #fbc02d; vertical-align: -3px; }
"""

PAGE_SCRIPT = """
window.fixture = {
  beats: 0,
  errors: [],
  appendThreads(markup) {
    document.querySelector("#sections > #contents").insertAdjacentHTML("beforeend", markup);
  },
  appendLater() {
    const later = document.getElementById("later-comments");
    document.querySelector("#sections > #contents").append(later.content.cloneNode(true));
  },
  navigate(videoId, title, markup) {
    // what YouTube does on a click to another video: no new document, a new URL, new comments
    history.pushState({}, "", `/watch?v=${videoId}`);
    document.querySelector("ytd-watch-metadata h1 yt-formatted-string").textContent = title;
    document.querySelector("#sections > #contents").innerHTML = markup;
    window.dispatchEvent(new Event("yt-navigate-finish"));
  },
  openReplies(threadId) {
    const thread = document.querySelector(`[data-fixture-thread="${threadId}"]`);
    const replies = thread.querySelector("template.fixture-replies");
    thread.querySelector("#expander-contents > #contents").append(replies.content.cloneNode(true));
  },
};
window.addEventListener("error", (event) => window.fixture.errors.push(String(event.message)));
setInterval(() => {
  window.fixture.beats += 1;
  document.getElementById("heartbeat").textContent = `page script beats: ${window.fixture.beats}`;
}, 50);
"""


def watch_page(video_id: str, title: str, threads: list[Thread], later: list[Thread] = ()) -> str:
    """The watch page of ``video_id``: ``threads`` in the document, ``later`` appended by
    ``fixture.appendLater()``."""
    count = sum(1 + len(t.replies) for t in [*threads, *later])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} - YouTube</title>
<link rel="icon" href="data:,"><style>{PAGE_STYLE}</style></head>
<body><ytd-app><div id="page-manager"><ytd-watch-flexy>
<div id="player">video player</div>
<ytd-watch-metadata><div id="title"><h1><yt-formatted-string>{html.escape(title)}</yt-formatted-string></h1>
</div></ytd-watch-metadata>
<ytd-comments id="comments"><ytd-item-section-renderer id="sections">
<div id="header"><h2>{count} Comments</h2><div id="heartbeat"></div></div>
<div id="contents">{threads_markup(threads, video_id)}</div>
</ytd-item-section-renderer></ytd-comments>
</ytd-watch-flexy></div></ytd-app>
<template id="later-comments">{threads_markup(list(later), video_id)}</template>
<script>{PAGE_SCRIPT}</script>
</body></html>"""
