// caravan Web UI: the "ACL Tokens" page (Nomad's /ui/settings/tokens). The secret is checked
// against /v1/acl/token/self, then kept in this browser's localStorage and sent with every API
// call as X-Nomad-Token; "Clear Token" forgets it.
import { h, fill, api, facts, tokenSecret, setTokenSecret } from "./lib.js";

export function tokensView(main, signal) {
  const input = h("input", { type: "password", id: "token-secret", placeholder: "Secret ID", "aria-label": "Secret ID", autocomplete: "off" });
  const message = h("p", { id: "token-message", class: "muted" });
  const current = h("div", { id: "token-current" });

  const show = async () => {
    if (!tokenSecret()) {
      fill(current, h("p", { class: "muted" }, "No token set: the UI acts anonymously."));
      return;
    }
    try {
      const { data } = await api("/v1/acl/token/self", { signal });
      fill(current, h("h2", {}, "Token"), facts([
        ["Name", data.Name || "–"],
        ["Accessor ID", h("span", { class: "mono" }, data.AccessorID)],
        ["Type", data.Type],
        ["Policies", (data.Policies || []).join(", ") || "–"],
      ]));
    } catch (err) {
      if (signal.aborted) return;
      fill(current, h("p", { class: "error" }, `The token set is not accepted: ${err.message}`));
    }
  };

  const set = async () => {
    const secret = input.value.trim();
    if (!secret) return;
    try {
      await api("/v1/acl/token/self", { signal, secret });
    } catch (err) {
      message.className = "error";
      message.textContent = `Failed to set the token: ${err.message}`;
      return;
    }
    setTokenSecret(secret);
    input.value = "";
    message.className = "muted";
    message.textContent = "Token set: the UI now acts with it.";
    show();
  };

  const clear = () => {
    setTokenSecret("");
    message.className = "muted";
    message.textContent = "Token cleared.";
    show();
  };

  fill(main,
    h("h1", {}, "ACL Tokens"),
    h("p", {}, "With ACLs enabled, the UI acts with the token whose secret is set here. It is kept in this browser only."),
    h("div", { class: "toolbar" }, input,
      h("button", { type: "button", class: "primary", onclick: set }, "Set Token"),
      h("button", { type: "button", onclick: clear }, "Clear Token")),
    message, current);
  input.addEventListener("keydown", (event) => { if (event.key === "Enter") set(); });
  show();
}
