// Looking closely at a group: a loupe synced across the images (the same spot of every
// picture, at 1:1 or more of its own pixels), and a canvas that flickers between two images
// or shows their difference, both scaled to the same size. A mirrored or turned copy is
// turned back first (turns.js), so that like is compared with like.

import { h } from "./dom.js";
import { apply, between, inverse, matrix, times } from "./turns.js";

export const ZOOMS = [1, 2, 4, 8];
const LOUPE = 180; // px, the loupe's side
const CANVAS_SIDE = 800; // the compare canvas's longest side, at most

// `frames`: [{frame, img, loupe, turn}], turn: the file's from_first; `state.zoom` is on/off
// and `state.level` the magnification.
export function attachLoupe(frames, state, onLevel) {
  // {at: the spot in the first file's centred coordinates, from: the frame under the pointer}
  let spot = null;
  const draw = () => {
    for (const { img, loupe, turn } of frames) {
      if (!state.zoom || !spot || !img.naturalWidth) {
        loupe.hidden = true;
        continue;
      }
      const [sx, sy] = apply(matrix(turn), spot.at); // the same spot of this picture
      const [u, v] = [(sx + 1) / 2, (sy + 1) / 2];
      // seen turned like the picture under the pointer
      const [a, b, c, d] = times(matrix(frames[spot.from].turn), inverse(matrix(turn)));
      const w = img.naturalWidth * state.level;
      const hgt = img.naturalHeight * state.level;
      // the loupe sits over the same spot of each image (the frame may centre a small one)
      const x = img.offsetLeft + u * img.clientWidth - LOUPE / 2;
      const y = img.offsetTop + v * img.clientHeight - LOUPE / 2;
      Object.assign(loupe.style, {
        left: `${x}px`, top: `${y}px`, width: `${LOUPE}px`, height: `${LOUPE}px`,
        backgroundImage: `url("${img.currentSrc || img.src}")`,
        backgroundSize: `${w}px ${hgt}px`,
        backgroundPosition: `${LOUPE / 2 - u * w}px ${LOUPE / 2 - v * hgt}px`,
        transform: `matrix(${a}, ${b}, ${c}, ${d}, 0, 0)`,
      });
      loupe.hidden = false;
    }
  };
  frames.forEach(({ frame, img, turn }, from) => {
    frame.addEventListener("mousemove", (e) => {
      const box = img.getBoundingClientRect();
      if (!box.width) return;
      const centred = (offset, side) => Math.min(1, Math.max(-1, (2 * offset) / side - 1));
      const here = [centred(e.clientX - box.left, box.width), centred(e.clientY - box.top, box.height)];
      spot = { at: apply(inverse(matrix(turn)), here), from };
      draw();
    });
    frame.addEventListener("mouseleave", () => { spot = null; draw(); });
    frame.addEventListener("wheel", (e) => {
      if (!state.zoom) return;
      e.preventDefault();
      const at = ZOOMS.indexOf(state.level);
      state.level = ZOOMS[Math.min(ZOOMS.length - 1, Math.max(0, at + (e.deltaY < 0 ? 1 : -1)))];
      onLevel(state.level);
      draw();
    }, { passive: false });
  });
  return {
    redraw: draw,
    centre() { spot = spot || { at: [0, 0], from: 0 }; draw(); },
  };
}

// The compare panel: a canvas, a caption, a slider for the difference's gain, and whether
// B's flip or turn is undone.
export class Compare {
  constructor() {
    this.canvas = h("canvas", { class: "compare-canvas", role: "img", "aria-label": "Comparison" });
    this.caption = h("p", { class: "compare-caption", "aria-live": "polite" });
    this.gain = h("input", { id: "gain", type: "range", min: 1, max: 16, value: 4 });
    this.gain.addEventListener("input", () => { if (this.mode === "difference") this.show(); });
    this.undo = h("input", { id: "undo-turn", type: "checkbox", checked: true });
    this.undo.addEventListener("change", () => { if (this.mode) this.show(); });
    this.panel = h("div", { class: "compare", hidden: true },
      this.caption, this.canvas,
      h("label", { for: "gain" }, "Difference gain "), this.gain,
      h("span", { class: "undo-turn" }, this.undo,
        h("label", { for: "undo-turn" }, " Turn B back onto A (undo its flip or turn)")));
    this.mode = null;
    this.timer = null;
  }

  start(mode, a, b) {
    this.stop();
    this.mode = mode;
    this.a = a; // {img, name, turn: its from_first}
    this.b = b;
    this.panel.hidden = false;
    this.show();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.mode = null;
    this.panel.hidden = true;
  }

  size() {
    const { naturalWidth: w, naturalHeight: hgt } = this.a.img;
    const scale = Math.min(1, CANVAS_SIDE / Math.max(w, hgt)) || 1;
    return [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(hgt * scale))];
  }

  // B drawn onto A's frame: a point p of A (centred coordinates) is B's point M·p, M the
  // turn from A to B, so B's pixels go through M's inverse.
  drawB(ctx, turn, w, hgt) {
    ctx.save();
    ctx.setTransform(w / 2, 0, 0, hgt / 2, w / 2, hgt / 2); // centred coordinates -> canvas
    const [a, b, c, d] = inverse(matrix(turn));
    ctx.transform(a, b, c, d, 0, 0);
    ctx.drawImage(this.b.img, -1, -1, 2, 2);
    ctx.restore();
  }

  // What the caption says of B's turn, and the turn drawn.
  turnOfB() {
    const turn = between(this.a.turn, this.b.turn);
    if (turn === "identity") return ["identity", ""];
    return this.undo.checked ? [turn, ` · B turned back: ${turn}`]
      : ["identity", ` · B as it is (its ${turn} not undone)`];
  }

  show() {
    const [w, hgt] = this.size();
    const [turn, turned] = this.turnOfB();
    this.canvas.dataset.turn = turn;
    this.canvas.width = w;
    this.canvas.height = hgt;
    this.canvas.style.width = `${Math.max(w, this.a.img.clientWidth)}px`; // as A is shown
    const ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    if (this.mode === "flicker") {
      let showingA = false;
      const flip = () => {
        showingA = !showingA;
        const side = showingA ? this.a : this.b;
        if (showingA) ctx.drawImage(side.img, 0, 0, w, hgt);
        else this.drawB(ctx, turn, w, hgt);
        this.caption.textContent = `Flicker: ${showingA ? "A" : "B"} · ${side.name}${turned}`;
      };
      flip();
      clearInterval(this.timer);
      this.timer = setInterval(flip, 500);
      return;
    }
    ctx.drawImage(this.a.img, 0, 0, w, hgt);
    const first = ctx.getImageData(0, 0, w, hgt);
    this.drawB(ctx, turn, w, hgt);
    const second = ctx.getImageData(0, 0, w, hgt);
    const gain = Number(this.gain.value);
    let total = 0;
    for (let i = 0; i < first.data.length; i += 4) {
      for (let c = 0; c < 3; c += 1) {
        const d = Math.abs(first.data[i + c] - second.data[i + c]);
        total += d;
        second.data[i + c] = Math.min(255, d * gain);
      }
      second.data[i + 3] = 255;
    }
    ctx.putImageData(second, 0, 0);
    const mean = total / (w * hgt * 3);
    this.canvas.dataset.meanDifference = mean.toFixed(2);
    this.caption.textContent = `Difference |A − B| × ${gain}: ${this.a.name} vs ${this.b.name} · `
      + `mean ${mean.toFixed(1)} of 255 per channel, at ${w}×${hgt}${turned}`;
  }
}
