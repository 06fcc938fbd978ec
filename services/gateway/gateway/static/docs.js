// Swagger UI on the gateway's OpenAPI document (a file, not inline: the docs page's CSP runs no inline script).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
