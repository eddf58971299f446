// Count a view of this article: one beacon per page load, sent after the page is shown.
// The page itself stays cacheable; the count goes to Redis (posts/viewcounts.py).
(function () {
  var article = document.querySelector("[data-view-url]");
  if (article && navigator.sendBeacon) {
    navigator.sendBeacon(article.getAttribute("data-view-url"));
  }
})();
