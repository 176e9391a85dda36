/** A small REST client for a party node's API, as an integrating app (or the CLI, demo and tests) uses it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- callers pick the body type
export interface ApiResponse<T = any> {
  status: number;
  body: T;
  contentType: string | null;
}

export class ApiClient {
  constructor(readonly baseUrl: string) {}

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async request<T = any>(method: string, path: string, body?: unknown, rawBody?: string): Promise<ApiResponse<T>> {
    const response = await fetch(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers: body !== undefined || rawBody !== undefined ? { 'content-type': 'application/json' } : {},
      body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as T) : (undefined as T), contentType: response.headers.get('content-type') };
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get<T = any>(path: string) {
    return this.request<T>('GET', path);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  post<T = any>(path: string, body: unknown) {
    return this.request<T>('POST', path, body);
  }
}
