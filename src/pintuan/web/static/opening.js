// The countdown to a deal's opening: <time data-opens-in="seconds">server text</time>. The
// server counted the seconds, so a shopper whose clock is wrong still sees the right time; this
// ticks them down on the browser's steady clock and loads the page again when they run out,
// when its start and buy buttons work. Without this script the page says the same, unticking.
(function () {
  "use strict";

  var el = document.querySelector("[data-opens-in]");
  if (!el || !window.performance) { return; }
  var seconds = parseInt(el.getAttribute("data-opens-in"), 10);
  if (isNaN(seconds)) { return; }
  var opensAt = window.performance.now() + seconds * 1000;
  // How the page's language writes days ("%(days)sd %(clock)s", "%(days)s天 %(clock)s").
  var daysFormat = el.getAttribute("data-days-format") || "%(days)s %(clock)s";
  var timer = null;

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function text(left) {
    var days = Math.floor(left / 86400);
    var rest = left % 86400;
    var clock = pad(Math.floor(rest / 3600)) + ":" + pad(Math.floor((rest % 3600) / 60)) + ":" + pad(rest % 60);
    return days > 0 ? daysFormat.replace("%(days)s", String(days)).replace("%(clock)s", clock) : clock;
  }

  function tick() {
    // Rounded up, as the server rounds: the text reaches zero at the opening, not before.
    var left = Math.ceil((opensAt - window.performance.now()) / 1000);
    if (left <= 0) {
      window.clearInterval(timer);
      el.textContent = text(0);
      window.location.reload();
      return;
    }
    el.textContent = text(left);
  }

  // A quarter of a second keeps the shown second within that of the true one.
  timer = window.setInterval(tick, 250);
  tick();
})();
