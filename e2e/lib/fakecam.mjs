// Scenes for Chromium's fake camera, made from the development face set
// (../shared/data/faces/bbt, MIT): a synthetic identity card with a printed-looking ID
// photo, and phone-camera frames of a face. Chromium composes the pictures (canvas) so no
// image library is needed; this module writes them as one-frame Y4M files, which
// `--use-file-for-fake-video-capture` plays in a loop, and as PNG files for the file-input
// fallback.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FACES_DIR = process.env.MIMOTO_FACES_DIR || fileURLToPath(new URL('../../../shared/data/faces/bbt/', import.meta.url));

function dataURL(rel) {
  return `data:image/png;base64,${readFileSync(path.join(FACES_DIR, rel)).toString('base64')}`;
}

/**
 * Renders a scene in `page` (any page; about:blank is enough) and returns
 * {width, height, rgba: Buffer, png: Buffer}.
 *   {kind: 'card', face: 'leonard/leonard1.png'}   1280×720: a card on a table
 *   {kind: 'selfie', face: 'leonard/leonard2.png'} 640×480: a face filling half the frame
 */
export async function renderScene(page, scene) {
  const out = await page.evaluate(
    async ({ kind, src, shift, jitter, marker, shade }) => {
      const load = (url) =>
        new Promise((resolve, reject) => {
          const img = new Image();
          img.onload = () => resolve(img);
          img.onerror = () => reject(new Error('image did not load'));
          img.src = url;
        });
      const face = await load(src);
      const canvas = document.createElement('canvas');
      const ctx = canvas.getContext('2d');
      if (kind === 'card') {
        canvas.width = 1280;
        canvas.height = 720;
        ctx.fillStyle = 'rgb(120,112,100)'; // the table
        ctx.fillRect(0, 0, 1280, 720);
        // The ID photo is printed: grey, soft, compressed hard.
        const print = document.createElement('canvas');
        print.width = 190;
        print.height = 190;
        const p = print.getContext('2d');
        p.filter = 'grayscale(0.6) blur(0.6px) contrast(0.9)';
        p.drawImage(face, 0, 0, 190, 190);
        const printed = await load(print.toDataURL('image/jpeg', 0.3));
        ctx.fillStyle = 'rgb(228,232,224)'; // the card
        ctx.beginPath();
        ctx.roundRect(128, 40, 1024, 640, 28);
        ctx.fill();
        ctx.fillStyle = 'rgb(60,70,90)'; // printed lines of text
        for (let i = 0; i < 7; i += 1) ctx.fillRect(176, 110 + i * 62, 380 + ((i * 97) % 160), 22);
        ctx.fillStyle = 'rgb(200,212,224)'; // the photo's background
        ctx.fillRect(848, 240, 260, 320);
        ctx.drawImage(printed, 883, 300);
      } else {
        canvas.width = 640;
        canvas.height = 480;
        ctx.fillStyle = `rgb(${96 + shade},104,112)`;
        ctx.fillRect(0, 0, 640, 480);
        if (shift) {
          // The face's middle pushed `shift` source pixels sideways, its edges kept: FaceMesh
          // reads it as a head turned part of the way (the development set has no video).
          for (let x = 0; x < 300; x += 1) {
            const sx = Math.min(face.width - 1, Math.max(0, (x / 300) * face.width - shift * Math.sin((Math.PI * x) / 300)));
            ctx.drawImage(face, sx, 0, 1, face.height, 170 + jitter + x, 80, 1, 300);
          }
        } else {
          ctx.drawImage(face, 170 + jitter, 80, 300, 300);
        }
        if (marker) {
          // The start of the loop, for a test that wants the burst to begin facing the camera.
          ctx.fillStyle = 'rgb(0,255,0)';
          ctx.fillRect(0, 0, 48, 48);
        }
      }
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let binary = '';
      for (let i = 0; i < data.length; i += 0x8000) binary += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
      return { width: canvas.width, height: canvas.height, rgba: btoa(binary), png: canvas.toDataURL('image/png').split(',')[1] };
    },
    { kind: scene.kind, src: dataURL(scene.face), shift: scene.shift || 0, jitter: scene.jitter || 0, marker: !!scene.marker, shade: scene.shade || 0 },
  );
  return { width: out.width, height: out.height, rgba: Buffer.from(out.rgba, 'base64'), png: Buffer.from(out.png, 'base64') };
}

/** RGBA → one Y4M frame (4:2:0, full-range BT.601, as `C420jpeg` says). */
export function y4m(frame) {
  return y4mFrames([frame]);
}

/** RGBA frames of one size → a Y4M video at 15 frames per second. */
export function y4mFrames(frames) {
  const { width, height } = frames[0];
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F15:1 Ip A1:1 C420jpeg\n`, 'ascii');
  return Buffer.concat([header, ...frames.map((f) => Buffer.concat([Buffer.from('FRAME\n', 'ascii'), yuv420(f)]))]);
}

function yuv420({ width, height, rgba }) {
  const cw = width / 2;
  const ch = height / 2;
  const y = Buffer.alloc(width * height);
  const u = Buffer.alloc(cw * ch);
  const v = Buffer.alloc(cw * ch);
  const clamp = (x) => Math.max(0, Math.min(255, Math.round(x)));
  for (let j = 0; j < height; j += 1) {
    for (let i = 0; i < width; i += 1) {
      const k = (j * width + i) * 4;
      y[j * width + i] = clamp(0.299 * rgba[k] + 0.587 * rgba[k + 1] + 0.114 * rgba[k + 2]);
    }
  }
  for (let j = 0; j < ch; j += 1) {
    for (let i = 0; i < cw; i += 1) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
        const k = ((2 * j + dy) * width + 2 * i + dx) * 4;
        r += rgba[k];
        g += rgba[k + 1];
        b += rgba[k + 2];
      }
      r /= 4;
      g /= 4;
      b /= 4;
      u[j * cw + i] = clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
      v[j * cw + i] = clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
    }
  }
  return Buffer.concat([y, u, v]);
}

/** Renders `scene` and writes `<dir>/<name>.y4m` and `<dir>/<name>.png`; returns both paths. */
export async function writeScene(page, dir, name, scene) {
  mkdirSync(dir, { recursive: true });
  const frame = await renderScene(page, scene);
  const y4mPath = path.join(dir, `${name}.y4m`);
  const pngPath = path.join(dir, `${name}.png`);
  writeFileSync(y4mPath, y4m(frame));
  writeFileSync(pngPath, frame.png);
  return { y4m: y4mPath, png: pngPath };
}

/** Frames per second of the fake camera's video (the Y4M header). */
export const FAKECAM_FPS = 15;
/** Source-pixel shifts of the frames between the front and the turn (see renderScene). */
export const PART_WAY = [-6, -12, -18, -24];

/**
 * A head turning to the member's right, as a looping fake-camera video: `front` facing the
 * camera for 0.8 s (its first 0.27 s marked, see `waitForLoopStart`), four partial turns of
 * 0.4 s each, and `turned` for 3 s; every frame shifted a pixel or two and its background a
 * shade lighter, like a hand-held phone, so no two nearby frames are alike. A burst that starts
 * within 0.8 s of the mark (camera.js: 8 frames on a 400 ms schedule) sees the front, partial
 * turns, and ends turned, with 2.5 s to spare before the loop restarts. Writes `<dir>/<name>.y4m` and, as the file-input still,
 * `<name>.png`.
 */
export async function writeTurnScene(page, dir, name, { front, turned }) {
  mkdirSync(dir, { recursive: true });
  const plan = [
    ...Array.from({ length: 12 }, (_, i) => ({ face: front, marker: i < 4 })),
    ...PART_WAY.flatMap((shift) => Array.from({ length: 6 }, () => ({ face: front, shift }))),
    ...Array.from({ length: 45 }, () => ({ face: turned })),
  ];
  const frames = [];
  for (const [i, step] of plan.entries()) {
    // No two frames within 1.8 s alike (a burst frame that repeats the one before is refused).
    const scene = { kind: 'selfie', face: step.face, shift: step.shift, marker: step.marker, jitter: i % 3, shade: i % 27 };
    frames.push(await renderScene(page, scene));
  }
  const still = await renderScene(page, { kind: 'selfie', face: turned });
  const y4mPath = path.join(dir, `${name}.y4m`);
  const pngPath = path.join(dir, `${name}.png`);
  writeFileSync(y4mPath, y4mFrames(frames));
  writeFileSync(pngPath, still.png);
  return { y4m: y4mPath, png: pngPath, turn: true };
}

/**
 * Waits until the page's camera preview shows the start of the turn video's loop (the green
 * marker), so that a burst taken now sees the whole turn. Tests only.
 */
export async function waitForLoopStart(page, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const marked = await page.evaluate(() => {
      const video = document.querySelector('video');
      if (!video || !video.videoWidth) return false;
      const canvas = document.createElement('canvas');
      canvas.width = 8;
      canvas.height = 8;
      const scale = video.videoWidth / 640;
      canvas.getContext('2d').drawImage(video, 8 * scale, 8 * scale, 24 * scale, 24 * scale, 0, 0, 8, 8);
      const [r, g, b] = canvas.getContext('2d').getImageData(4, 4, 1, 1).data;
      return g > 200 && r < 80 && b < 80;
    });
    if (marked) return;
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
  throw new Error('the fake camera never showed the start of its loop');
}
