/* YouTube's comment markup, in one place (checked against youtube.com's watch page in 2026): a thread
 * (`ytd-comment-thread-renderer`) holds its top comment and, once opened, its replies; each comment is a
 * `ytd-comment-view-model` (the current renderer) or a `ytd-comment-renderer` (the older one), and its text
 * is the `#content-text` element inside it. When YouTube changes its markup, this is the file to edit. */

const selectors = Object.freeze({
  comment: "ytd-comment-view-model, ytd-comment-renderer",
  text: "#content-text",
  // The comment's permalink ("...&lc=<comment id>"): the key that counts a comment once.
  permalink: "#published-time-text a, a[href*='lc=']",
  // Where the badge goes (the author line), and the section the panel sits on top of.
  header: "#header-author",
  commentsSection: "ytd-comments#comments",
  videoTitle: "ytd-watch-metadata h1, h1.ytd-watch-metadata, #title h1",
});

if (typeof module === "object") module.exports = selectors;
