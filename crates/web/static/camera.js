// The in-page camera of the eKYC capture forms (F4). Without this script, or without a
// camera API, the form's file input (with its `capture` attribute) is the way in; with it,
// 「撮影をはじめる」 opens the camera (rear for documents, front for the face) behind a white
// frame, and 「撮影する」 puts the current frame into that same file input as a JPEG and
// submits the form with its one-time capture token. Nothing is sent anywhere else.
// On the angled-selfie form (`data-burst="N"`) 「撮影する」 takes N frames, one every 400 ms,
// while the member turns from the front to the instruction; the server checks that they show
// one continuous turn of the same face (a single still goes to a reviewer).
(function () {
  'use strict';
  var form = document.querySelector('form.capture');
  if (!form) return;
  var media = navigator.mediaDevices;
  if (!media || typeof media.getUserMedia !== 'function' || typeof DataTransfer !== 'function') return;

  var camera = form.querySelector('.camera');
  var fallback = form.querySelector('.fallback');
  var video = camera.querySelector('video');
  var start = form.querySelector('[data-camera=start]');
  var shoot = form.querySelector('[data-camera=shoot]');
  var status = form.querySelector('[data-camera=status]');
  var denied = form.querySelector('[data-camera=denied]');
  var input = form.querySelector('input[type=file]');
  var facing = form.dataset.facing === 'user' ? 'user' : 'environment';
  var stream = null;

  camera.hidden = false;
  fallback.hidden = true;

  function stop() {
    if (stream) {
      stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null;
    }
  }

  start.addEventListener('click', function () {
    denied.hidden = true;
    start.disabled = true;
    media
      .getUserMedia({ audio: false, video: { facingMode: { ideal: facing }, width: { ideal: 1920 }, height: { ideal: 1080 } } })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.addEventListener('loadeddata', function ready() {
          video.removeEventListener('loadeddata', ready);
          start.hidden = true;
          shoot.hidden = false;
          shoot.focus();
        });
        return video.play();
      })
      .catch(function () {
        // Permission denied (or no camera): say how to allow it, and offer the file input.
        stop();
        start.disabled = false;
        denied.hidden = false;
        fallback.hidden = false;
      });
  });

  var burst = Math.max(1, Math.min(8, parseInt(form.dataset.burst || '1', 10) || 1));
  var BURST_INTERVAL_MS = 400;
  // Burst frames are scaled to this width: enough for the face engine, small to send.
  var BURST_WIDTH = 640;

  // The current frame as a JPEG blob (the frame as the camera sees it: the front camera's
  // preview is mirrored for the member's comfort only; the photo is not).
  function grab(width, done) {
    var scale = width ? Math.min(1, width / video.videoWidth) : 1;
    var canvas = document.createElement('canvas');
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(done, 'image/jpeg', burst > 1 ? 0.85 : 0.92);
  }

  // Waits for the camera's next frame where the browser can say when one arrives, so a
  // stalled camera does not put the same picture in the burst twice (the server refuses that).
  function newFrame(done) {
    if (typeof video.requestVideoFrameCallback === 'function') video.requestVideoFrameCallback(function () { done(); });
    else done();
  }

  function send(blobs) {
    var files = new DataTransfer();
    blobs.forEach(function (blob, i) {
      files.items.add(new File([blob], 'capture-' + i + '.jpg', { type: 'image/jpeg' }));
    });
    input.files = files.files;
    stop();
    form.submit();
  }

  function failed() {
    shoot.disabled = false;
    status.textContent = '';
  }

  shoot.addEventListener('click', function () {
    if (!stream || !video.videoWidth) return;
    shoot.disabled = true;
    if (burst === 1) {
      status.textContent = form.dataset.sending || '';
      grab(0, function (blob) {
        if (blob) send([blob]);
        else failed();
      });
      return;
    }
    status.textContent = form.dataset.burstRunning || '';
    var blobs = [];
    // Frame k is due at start + k × interval (not interval after the previous one), so a slow
    // phone does not stretch the burst beyond the member's turn.
    var start = performance.now();
    (function next() {
      grab(BURST_WIDTH, function (blob) {
        if (!blob) return failed();
        blobs.push(blob);
        if (blobs.length === burst) {
          status.textContent = form.dataset.sending || '';
          send(blobs);
        } else {
          var due = start + blobs.length * BURST_INTERVAL_MS;
          setTimeout(function () { newFrame(next); }, Math.max(0, due - performance.now()));
        }
      });
    })();
  });

  window.addEventListener('pagehide', stop);
})();
