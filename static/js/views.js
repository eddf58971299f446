// Count a view of this article: one beacon per page load, sent after the page is shown.
// The page itself stays cacheable; the count goes to Redis (posts/viewcounts.py).
(function () {
  var article = document.querySelector("[data-view-url]");
  if (article && navigator.sendBeacon) {
    navigator.sendBeacon(article.getAttribute("data-view-url"));
  }
})();

// A figure whose image cannot load (offline, a dead link) shows its caption in a quiet panel
// of the same size instead of a broken-image icon.
(function () {
  function missing(img) {
    img.closest("figure").classList.add("figure--missing");
  }
  document.querySelectorAll("figure img").forEach(function (img) {
    if (img.complete && img.naturalWidth === 0) {
      missing(img);
    } else {
      img.addEventListener("error", function () { missing(img); });
    }
  });
})();

// The meta box is open on a reader's first visit; once they close it, it stays closed on the
// pages they open later (remembered in this browser only, so cached pages stay the same).
(function () {
  var key = "alphanode:closed:";
  document.querySelectorAll("details[data-remember]").forEach(function (box) {
    var name = key + box.getAttribute("data-remember");
    try {
      if (localStorage.getItem(name) === "1") {
        box.open = false;
      }
      box.addEventListener("toggle", function () {
        localStorage.setItem(name, box.open ? "0" : "1");
      });
    } catch (error) {
      // Storage refused (private mode): the box simply stays open.
    }
  });
})();
