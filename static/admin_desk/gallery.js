/*
 * The trial gallery draws the protocol's still sample screens; the protocol's browser module, loaded after
 * this file, lays them out (as on the participant page) and registers its trial module, which the
 * gallery has no use for.
 */
window.psyplatform = window.psyplatform || { registerProtocol: function () {} };
