// The voucher counter: where the browser can read QR codes from the camera (BarcodeDetector and
// getUserMedia), a button scans the shopper's QR code, fills in the code and looks it up. Typing
// the code works everywhere; without this script, or without a camera, the page is the same.
(function () {
  "use strict";

  var box = document.querySelector("[data-scanner]");
  var media = navigator.mediaDevices;
  if (!box || !("BarcodeDetector" in window) || !media || typeof media.getUserMedia !== "function") {
    return;
  }
  var field = document.getElementById(box.getAttribute("data-scanner"));
  var start = box.querySelector("[data-scan-start]");
  var stop = box.querySelector("[data-scan-stop]");
  var video = box.querySelector("[data-scan-video]");
  var status = box.querySelector("[data-scan-status]");
  if (!field || !start || !stop || !video || !status) { return; }
  var detector = null;
  var stream = null;
  var timer = null;

  function say(name) { status.textContent = name ? box.getAttribute(name) || "" : ""; }

  function stopCamera() {
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
    }
    video.srcObject = null;
    video.hidden = true;
    stop.hidden = true;
    start.hidden = false;
  }

  function again() { timer = window.setTimeout(look, 250); }

  // A few frames a second is plenty at a counter, and spares a phone's battery.
  function look() {
    timer = null;
    if (!stream) { return; }
    detector.detect(video).then(function (codes) {
      var read = codes.length ? String(codes[0].rawValue || "").trim() : "";
      if (!read) { again(); return; }
      stopCamera();
      field.value = read;
      say("data-found");
      if (typeof field.form.requestSubmit === "function") {
        field.form.requestSubmit();
      } else {
        field.form.submit();
      }
    }, again);
  }

  window.BarcodeDetector.getSupportedFormats().then(function (formats) {
    if (formats.indexOf("qr_code") === -1) { return; }
    detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    box.hidden = false;
    start.addEventListener("click", function () {
      say("data-starting");
      media.getUserMedia({ video: { facingMode: "environment" }, audio: false })
        .then(function (camera) {
          stream = camera;
          video.srcObject = camera;
          video.hidden = false;
          start.hidden = true;
          stop.hidden = false;
          stop.focus();
          return video.play();
        })
        .then(function () {
          say("data-scanning");
          look();
        })
        .catch(function () {
          stopCamera();
          say("data-denied");
        });
    });
    stop.addEventListener("click", function () {
      stopCamera();
      say("");
      start.focus();
    });
    window.addEventListener("pagehide", stopCamera);
  }).catch(function () { /* no formats to read: typing it is */ });
})();
