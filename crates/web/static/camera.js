// The in-page camera of the eKYC capture forms (F4). Without this script, or without a
// camera API, the form's file input (with its `capture` attribute) is the way in; with it,
// 「撮影をはじめる」 opens the camera (rear for documents, front for the face) behind a white
// frame, and 「撮影する」 puts the current frame into that same file input as a JPEG and
// submits the form with its one-time capture token. Nothing is sent anywhere else.
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

  shoot.addEventListener('click', function () {
    if (!stream || !video.videoWidth) return;
    var canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    // The frame as the camera sees it (the front camera's preview is mirrored for the
    // member's comfort only; the photo is not).
    canvas.getContext('2d').drawImage(video, 0, 0);
    shoot.disabled = true;
    status.textContent = form.dataset.sending || '';
    canvas.toBlob(
      function (blob) {
        if (!blob) {
          shoot.disabled = false;
          status.textContent = '';
          return;
        }
        var files = new DataTransfer();
        files.items.add(new File([blob], 'capture.jpg', { type: 'image/jpeg' }));
        input.files = files.files;
        stop();
        form.submit();
      },
      'image/jpeg',
      0.92,
    );
  });

  window.addEventListener('pagehide', stop);
})();
