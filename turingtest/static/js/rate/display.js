/*
 * How the image is drawn: whole-number scale factors, and a zoom that really magnifies.
 *
 * Every stored image has one pixel size (IMAGE_SIZE, 256 by default), usually smaller than
 * the screen. The browser's own resampling at an arbitrary factor (1.43x, 2.7x...) softens
 * the fine texture a rater judges, differently in each browser. So the image is drawn at the
 * largest whole number of *device* pixels per image pixel that fits the stage, with
 * `image-rendering: pixelated` (rate.css explains the choice): every stored pixel becomes an
 * exact k x k block, for real and synthetic images alike. Only a stage smaller than the
 * image (rare) falls back to the browser's smooth downscaling, where nearest-neighbour would
 * drop pixels.
 *
 * The zoom view shows the image at twice the device pixels per image pixel of the page view
 * (a whole number again), and never below one CSS pixel per image pixel, in a pannable
 * overlay opened on the image's centre. Pinch zoom stays on: the viewport meta does not
 * block user scaling.
 *
 * Sizes go through CSS custom properties set with the CSSOM (the CSP forbids inline style
 * attributes, not style properties set from a module).
 */

const TOUCH_ONLY = "(hover: none) and (pointer: coarse)";

/** True on a touch screen without a mouse or keyboard pointer: key hints are noise there. */
export function isTouchOnly() {
  return typeof window.matchMedia === "function" && window.matchMedia(TOUCH_ONLY).matches;
}

/** Device pixels per image pixel for ``image`` drawn into a ``cssSize`` square; 0 if it must shrink. */
function wholeFactor(cssSize, natural) {
  const dpr = window.devicePixelRatio || 1;
  return Math.floor((cssSize * dpr) / natural);
}

/**
 * Keeps ``image`` at a whole-number scale inside ``stage`` (refitted when the stage changes
 * size) and sizes the zoom view.
 */
export function createImageFit({ stage, image }) {
  let factor = 0; // device pixels per image pixel in the page view (0: smooth downscale)

  function fit() {
    const natural = image.naturalWidth;
    if (!natural || stage.classList.contains("zoomed")) return;
    const box = Math.min(stage.clientWidth, stage.clientHeight);
    if (!box) return;
    const dpr = window.devicePixelRatio || 1;
    factor = wholeFactor(box, natural);
    stage.classList.toggle("whole-scale", factor >= 1);
    if (factor >= 1) stage.style.setProperty("--image-size", (natural * factor) / dpr + "px");
    else stage.style.removeProperty("--image-size");
  }

  /** Sizes the zoom view (call before showing it) and returns its CSS size in pixels. */
  function zoomIn() {
    const natural = image.naturalWidth;
    if (!natural) return 0;
    const dpr = window.devicePixelRatio || 1;
    const shown = factor || (image.getBoundingClientRect().width * dpr) / natural;
    const zoomFactor = Math.max(2, Math.ceil(2 * shown), Math.ceil(dpr));
    const size = (natural * zoomFactor) / dpr;
    stage.style.setProperty("--zoom-size", size + "px");
    return size;
  }

  /** Opens the pannable zoom view on the image's centre. */
  function centre() {
    stage.scrollLeft = (stage.scrollWidth - stage.clientWidth) / 2;
    stage.scrollTop = (stage.scrollHeight - stage.clientHeight) / 2;
  }

  if (typeof ResizeObserver === "function") new ResizeObserver(fit).observe(stage);
  window.addEventListener("resize", fit); // also catches a devicePixelRatio change (browser zoom)

  return { fit, zoomIn, centre };
}
