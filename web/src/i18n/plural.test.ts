import { describe, expect, it } from 'vitest'

import { i18n, ruPlural } from '.'

describe('Russian plurals', () => {
  it('picks one, few or many', () => {
    expect([1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111].map((n) => ruPlural(n, 3)))
      .toEqual([0, 1, 1, 2, 2, 2, 2, 0, 1, 2, 0, 2])
  })

  it('formats a countdown in both languages', () => {
    const { t, locale } = i18n.global
    locale.value = 'ru'
    expect(t('signIn.resendIn', 21)).toBe('Новый код можно запросить через 21 секунду')
    expect(t('signIn.resendIn', 3)).toBe('Новый код можно запросить через 3 секунды')
    expect(t('signIn.resendIn', 12)).toBe('Новый код можно запросить через 12 секунд')
    locale.value = 'en'
    expect(t('signIn.resendIn', 1)).toBe('You can ask for a new code in 1 second')
    locale.value = 'ru'
  })

  it('has the same keys in Russian and English', async () => {
    const keys = (o: object, p = ''): string[] => Object.entries(o).flatMap(([k, v]) =>
      typeof v === 'object' ? keys(v as object, `${p}${k}.`) : [`${p}${k}`])
    const ru = (await import('./ru.json')).default
    const en = (await import('./en.json')).default
    expect(keys(en).sort()).toEqual(keys(ru).sort())
  })
})
