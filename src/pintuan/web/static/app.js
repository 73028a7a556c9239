// Small enhancements; every page works without them.
(function () {
  "use strict";

  // Tell the server the browser's time zone, for visitors who have not chosen one.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) {
      if (document.cookie.indexOf("tz=") === -1) {
        // IANA names (Asia/Jakarta) are cookie-safe as they are; the server reads them back as such.
        document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
        // A first visit was rendered in UTC: show it again on this browser's clock, once
        // (only if the cookie stuck, so a browser that refuses cookies is not reloaded forever).
        var guessed = document.querySelector('meta[name="time-zone-guessed"]');
        var rendered = guessed && guessed.getAttribute("content");
        if (rendered && rendered !== zone && document.cookie.indexOf("tz=") !== -1) {
          window.location.reload();
        }
      }
      document.querySelectorAll("[data-browser-time-zone]").forEach(function (field) {
        field.value = zone;
      });
    }
  } catch (e) { /* an old browser: the server falls back to UTC */ }

  // Live countdowns: <time data-countdown datetime="…" data-ended="…">server text</time>.
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var end = Date.parse(el.getAttribute("datetime"));
      if (isNaN(end)) { return; }
      var left = Math.floor((end - now) / 1000);
      if (left <= 0) {
        el.textContent = el.getAttribute("data-ended") || "0:00:00";
        if (el.hasAttribute("data-reload-on-end") && !el.hasAttribute("data-reloaded")) {
          el.setAttribute("data-reloaded", "");
          window.setTimeout(function () { window.location.reload(); }, 3000);
        }
        return;
      }
      var days = Math.floor(left / 86400);
      var rest = left % 86400;
      var text = pad(Math.floor(rest / 3600)) + ":" + pad(Math.floor((rest % 3600) / 60)) + ":" + pad(rest % 60);
      // The page says how its language writes days ("%(days)sd %(clock)s", "%(days)s天 …").
      var daysFormat = el.getAttribute("data-days-format") || "%(days)s %(clock)s";
      el.textContent = days > 0
        ? daysFormat.replace("%(days)s", String(days)).replace("%(clock)s", text)
        : text;
    });
  }
  if (document.querySelector("[data-countdown]")) {
    tick();
    window.setInterval(tick, 1000);
  }

  // Language switcher and other forms that submit as soon as a choice is made.
  document.querySelectorAll("[data-submit-on-change]").forEach(function (field) {
    field.addEventListener("change", function () { field.form.submit(); });
  });

  // Share: the system share sheet when there is one, else copy the link. A data-native button
  // shows only where the browser has a share sheet, a data-copy-fallback one only where not.
  var canShare = typeof navigator.share === "function";
  document.querySelectorAll("[data-share]").forEach(function (button) {
    var native = button.hasAttribute("data-native");
    if ((native && !canShare) || (canShare && button.hasAttribute("data-copy-fallback"))) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-share"));
      var url = field ? field.value : window.location.href;
      var status = document.getElementById(button.getAttribute("data-status"));
      function say(text) { if (status) { status.textContent = text; } }
      if (native) {
        navigator.share({
          title: button.getAttribute("data-share-title") || document.title,
          text: button.getAttribute("data-share-text") || "",
          url: url
        }).catch(function () { /* the shopper closed the sheet */ });
        return;
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(url).then(function () {
          say(button.getAttribute("data-copied"));
        }, function () {
          field.select();
          say(button.getAttribute("data-select"));
        });
      } else if (field) {
        field.focus();
        field.select();
        var copied = false;
        try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
        say(button.getAttribute(copied ? "data-copied" : "data-select"));
      }
    });
  });

  // The home page's "teams forming now": fetched again every half minute while the page is
  // visible, so teams that filled drop out and new ones appear without a reload.
  var strip = document.querySelector("[data-live-strip]");
  if (strip && window.fetch && window.DOMParser) {
    window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (answer) { return answer.ok ? answer.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live-strip]");
          if (fresh) { strip.innerHTML = fresh.innerHTML; }
        })
        .catch(function () { /* offline for a moment: keep what is shown */ });
    }, 30000);
  }

  // Forms that take effect once: disable the button after the first submit.
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        window.setTimeout(function () { b.disabled = true; }, 0);
      });
    });
  });

  // After logging in, the kept action's form is sent at once (its button is the fallback).
  var kept = document.querySelector("form[data-auto-submit]");
  if (kept) {
    kept.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    kept.submit();
  }
})();
