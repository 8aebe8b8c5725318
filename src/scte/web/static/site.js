// Progressive enhancement only: every page works without this script.
// GOV.UK Frontend's components (menu toggle, error summary focus, ...) start when the browser supports them.
document.body.classList.add("js-enabled");
if ("noModule" in HTMLScriptElement.prototype) {
  document.body.classList.add("govuk-frontend-supported");
  const meta = document.querySelector('meta[name="scte-govuk-js"]');
  if (meta) {
    import(meta.content).then((govuk) => govuk.initAll());
  }
}
