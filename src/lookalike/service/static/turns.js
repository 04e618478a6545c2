// The 8 flips and quarter turns of methods/dihedral.py as matrices on a picture's centred
// coordinates (x right, y down, each side from −1 to 1), in the canvas's order [a, b, c, d]:
// x' = a·x + c·y, y' = b·x + d·y. The server composes the turns along a group's links (each
// file's from_first); here they only become matrices, for the canvas and the loupe.

const MATRICES = {
  identity: [1, 0, 0, 1],
  rot90: [0, -1, 1, 0], // np.rot90 turns counter-clockwise: the top right corner goes top left
  rot180: [-1, 0, 0, -1],
  rot270: [0, 1, -1, 0],
  mirror: [-1, 0, 0, 1], // left-right
  "mirror+rot90": [0, 1, 1, 0], // mirror first, then turn
  "mirror+rot180": [1, 0, 0, -1],
  "mirror+rot270": [0, -1, -1, 0],
};

export function matrix(name) {
  return MATRICES[name] || MATRICES.identity; // no evidence of a turn: as it is
}

// Each matrix is a signed permutation: its inverse is its transpose.
export function inverse([a, b, c, d]) {
  return [a, c, b, d];
}

// m after n
export function times([a, b, c, d], [e, f, g, k]) {
  return [a * e + c * f, b * e + d * f, a * g + c * k, b * g + d * k];
}

export function apply([a, b, c, d], [x, y]) {
  return [a * x + c * y, b * x + d * y];
}

// The name of the turn that takes A onto B, from their turns from the group's first file.
export function between(fromFirstA, fromFirstB) {
  const m = times(matrix(fromFirstB), inverse(matrix(fromFirstA))).join();
  return Object.keys(MATRICES).find((name) => MATRICES[name].join() === m);
}
