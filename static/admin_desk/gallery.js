/*
 * The trial gallery draws the protocol's still sample screens; the protocol's browser module, loaded after
 * this file, lays them out (as on the participant page) and registers its trial module, which the
 * gallery has no use for. The participant shell is not loaded here: this stands in for the one piece of it
 * that sample screens use, psyplatform.grid (static/participant/shell.js), and keep the two alike.
 */
window.psyplatform = window.psyplatform || {
  registerProtocol: function () {},
  grid: function (node, grid) {
    node.style.setProperty("--cols", String(grid.columns));
    node.style.setProperty("--rows", String(grid.rows));
  },
};
