import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

import { describe, expect, it } from 'vitest'

import { i18n, setLocale } from '@/i18n'
import en from '@/i18n/en.json'
import ru from '@/i18n/ru.json'

import { ApiError, NETWORK_FAILED, errorMessage, toApiError } from './errors'

const translator = { t: (k: string, p?: Record<string, unknown>) => i18n.global.t(k, p ?? {}), te: (k: string) => i18n.global.te(k) }

function lookup(messages: unknown, code: string): unknown {
  return code.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part],
    (messages as { errors: unknown }).errors)
}

describe('error messages: one place, a message per API code', () => {
  it('shows the locale message of a known code, in the current language', () => {
    const error = toApiError(400, { error: { code: 'sign_in.wrong_code', message: 'The code is wrong.' } })
    setLocale('ru')
    expect(errorMessage(error, translator)).toBe('Неверный код. Проверьте и введите снова.')
    setLocale('en')
    expect(errorMessage(error, translator)).toBe('Wrong code. Check it and try again.')
    setLocale('ru')
  })

  it("falls back to the API's own message for a code the client does not know yet", () => {
    const error = new ApiError(409, { code: 'brand.new_rule', message: 'A rule the client has not heard of.' })
    expect(errorMessage(error, translator)).toBe('A rule the client has not heard of.')
  })

  it('says something human for a body without the error shape and for no answer at all', () => {
    expect(toApiError(502, '<html>bad gateway</html>').code).toBe('http.502')
    expect(errorMessage(toApiError(502, null), translator)).toBe(ru.errors.unknown)
    expect(errorMessage(new ApiError(0, { code: NETWORK_FAILED }), translator)).toContain('Нет связи')
    expect(errorMessage(new Error('boom'), translator)).toBe(ru.errors.unknown)
  })

  it('has a Russian and an English message for every refusal the OpenAPI document lists', () => {
    const schema = readFileSync(resolve(process.cwd(), 'src/api/schema.d.ts'), 'utf8')
    const codes = new Set<string>()
    // Each error response's description lists its codes: "@description phone.invalid, sign_in.delivery_failed".
    const list = /(?:@description |Refusals: )((?:[a-z_]+\.[a-z_]+)(?:, [a-z_]+\.[a-z_]+)*)\s*\*\//g
    for (const match of schema.matchAll(list)) {
      for (const code of (match[1] ?? '').split(',')) codes.add(code.trim())
    }
    expect(codes.size).toBeGreaterThan(50)
    const missing = [...codes].filter((c) => typeof lookup(ru, c) !== 'string' || typeof lookup(en, c) !== 'string')
    expect(missing).toEqual([])
  })
})
