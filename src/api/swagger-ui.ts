/** Swagger UI at /api, served from the swagger-ui-dist package (no CDN), reading our OpenAPI document. */
import { dirname } from 'node:path';
import express, { Router } from 'express';

const INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: '/api/v1/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: 'StandaloneLayout',
  });
};
`;

export function swaggerUi(): Router {
  const root = dirname(require.resolve('swagger-ui-dist/package.json'));
  const r = Router({ strict: true });
  // The page loads its assets relative to itself, so it must be served under /api/.
  r.get('/api', (_req, res) => res.redirect(301, '/api/'));
  r.get('/api/swagger-initializer.js', (_req, res) => {
    res.type('application/javascript').send(INITIALIZER);
  });
  r.use('/api/', express.static(root, { index: 'index.html', fallthrough: true }));
  return r;
}
