// Cytoscape caches where its canvas sits on the page and re-measures only on resize or scroll. A line that
// appears above a graph (a warning, a live state) moves the canvas without either, and clicks then land
// beside the node they aim at. Re-measuring on each press keeps clicks true; returns the undo.
import type { Core } from "cytoscape";

export function remeasureOnPress(cy: Core, container: HTMLElement): () => void {
  const remeasure = () => cy.resize();
  container.addEventListener("pointerdown", remeasure, { capture: true });
  return () => container.removeEventListener("pointerdown", remeasure, { capture: true });
}
