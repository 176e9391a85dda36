/** A small REST client for a party node's API, as an integrating app (or the CLI, demo and tests) uses it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- callers pick the body type
export interface ApiResponse<T = any> {
  status: number;
  body: T;
  contentType: string | null;
  headers: Headers;
}

export interface RequestOptions {
  /** Sent as the raw body instead of JSON-encoding `body` (to test malformed input). */
  rawBody?: string;
  headers?: Record<string, string>;
}

export class ApiClient {
  /** `apiKey` is sent as `Authorization: Bearer <key>`; without one, requests are anonymous. */
  constructor(
    readonly baseUrl: string,
    private readonly apiKey?: string,
  ) {}

  /** The same node, as another app (another key, or none). */
  withKey(apiKey: string | undefined): ApiClient {
    return new ApiClient(this.baseUrl, apiKey);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async request<T = any>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}), ...options.headers };
    if (body !== undefined || options.rawBody !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers,
      body: options.rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as T) : (undefined as T), contentType: response.headers.get('content-type'), headers: response.headers };
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get<T = any>(path: string) {
    return this.request<T>('GET', path);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  post<T = any>(path: string, body: unknown, options?: RequestOptions) {
    return this.request<T>('POST', path, body, options);
  }
}
