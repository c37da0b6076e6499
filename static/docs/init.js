// Starts Swagger UI on /docs from a file (the page's CSP allows no inline script).
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.spec,
  domNode: root,
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
});
