// The API reference at /docs: Swagger UI (npm swagger-ui-dist, served by the gateway) over
// the description the gateway publishes. The token given to "Authorize" stays in this
// page's memory only (persistAuthorization off): never in storage, never in a URL.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: false,
  persistAuthorization: false,
  tryItOutEnabled: false,
  validatorUrl: null,
  supportedSubmitMethods: ["get", "put", "post", "delete"],
});
