/** A minimal REST client for a party node, as an integrating app would use it. */
export interface ApiResponse<T = any> {
  status: number;
  body: T;
  contentType: string | null;
}

export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async request<T = any>(method: string, path: string, body?: unknown, rawBody?: string): Promise<ApiResponse<T>> {
    const response = await fetch(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers: body !== undefined || rawBody !== undefined ? { 'content-type': 'application/json' } : {},
      body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as T) : (undefined as T), contentType: response.headers.get('content-type') };
  }

  get<T = any>(path: string) {
    return this.request<T>('GET', path);
  }

  post<T = any>(path: string, body: unknown) {
    return this.request<T>('POST', path, body);
  }
}
