import { describe, expect, it } from 'vitest';
import { redirectUriProblem } from '../../src/applications/core.ts';

describe('which redirect URIs an application may register', () => {
  it('accepts https URIs for every kind of application', () => {
    expect(redirectUriProblem('https://app.example.com/callback', 'Traditional')).toBeUndefined();
    expect(redirectUriProblem('https://app.example.com/callback?x=1', 'SPA')).toBeUndefined();
    expect(redirectUriProblem('https://app.example.com/callback', 'Native')).toBeUndefined();
  });

  it('accepts http on localhost and 127.0.0.1, with or without a port', () => {
    expect(redirectUriProblem('http://localhost/callback', 'Traditional')).toBeUndefined();
    expect(redirectUriProblem('http://localhost:3000/callback', 'SPA')).toBeUndefined();
    expect(redirectUriProblem('http://127.0.0.1:8080/callback', 'Native')).toBeUndefined();
    expect(redirectUriProblem('http://[::1]:8080/callback', 'Native')).toBeUndefined();
  });

  it('refuses http on any other host, including one that only starts with localhost', () => {
    expect(redirectUriProblem('http://example.com/callback', 'Traditional')).toMatch(/https/);
    expect(redirectUriProblem('http://localhost.example.com/callback', 'Traditional')).toMatch(/https/);
    expect(redirectUriProblem('http://example.com/callback', 'Native')).toMatch(/https/);
  });

  it('refuses a URI with a fragment, even an empty one', () => {
    expect(redirectUriProblem('https://app.example.com/callback#section', 'Traditional')).toMatch(/fragment/);
    expect(redirectUriProblem('https://app.example.com/callback#', 'SPA')).toMatch(/fragment/);
  });

  it('refuses a relative URI', () => {
    expect(redirectUriProblem('/callback', 'Traditional')).toMatch(/absolute/);
    expect(redirectUriProblem('app.example.com/callback', 'SPA')).toMatch(/absolute/);
    expect(redirectUriProblem('', 'Native')).toMatch(/absolute/);
  });

  it('refuses script and data schemes for every kind of application', () => {
    for (const type of ['Traditional', 'SPA', 'Native'] as const) {
      expect(redirectUriProblem('javascript:alert(1)', type)).toMatch(/forbidden scheme/);
      expect(redirectUriProblem('data:text/html,hi', type)).toMatch(/forbidden scheme/);
    }
  });

  it('accepts a reverse-domain private scheme for a Native app only', () => {
    expect(redirectUriProblem('com.example.app:/callback', 'Native')).toBeUndefined();
    expect(redirectUriProblem('com.example.app:/callback', 'Traditional')).toBeDefined();
    expect(redirectUriProblem('com.example.app:/callback', 'SPA')).toBeDefined();
  });

  it('refuses a private scheme that is not reverse-domain, even for a Native app', () => {
    expect(redirectUriProblem('myapp:/callback', 'Native')).toMatch(/reverse-domain/);
  });
});
