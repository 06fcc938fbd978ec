import { createI18n } from 'vue-i18n'

import en from './en.json'
import ru from './ru.json'

export const LOCALES = ['ru', 'en'] as const
export type Locale = (typeof LOCALES)[number]
const KEY = 'sfera.locale'

/** Russian plurals: "1 минута | 2 минуты | 5 минут" (one | few | many). */
export function ruPlural(choice: number, choicesLength: number): number {
  const n = Math.abs(Math.trunc(choice))
  if (choicesLength < 3) return n === 1 ? 0 : 1
  const mod10 = n % 10
  const mod100 = n % 100
  if (mod10 === 1 && mod100 !== 11) return 0
  if (mod10 >= 2 && mod10 <= 4 && (mod100 < 12 || mod100 > 14)) return 1
  return 2
}

function initialLocale(): Locale {
  const saved = globalThis.localStorage?.getItem(KEY)
  if (saved === 'ru' || saved === 'en') return saved
  return 'ru' // Russian first, whatever the browser says
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'ru',
  messages: { ru, en },
  pluralRules: { ru: ruPlural },
  datetimeFormats: {
    ru: { long: { year: 'numeric', month: 'long', day: 'numeric', hour: '2-digit', minute: '2-digit' },
          date: { year: 'numeric', month: 'long', day: 'numeric' } },
    en: { long: { year: 'numeric', month: 'long', day: 'numeric', hour: '2-digit', minute: '2-digit' },
          date: { year: 'numeric', month: 'long', day: 'numeric' } },
  },
  missingWarn: false,
  fallbackWarn: false,
})

export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale
  globalThis.localStorage?.setItem(KEY, locale)
  if (globalThis.document) document.documentElement.lang = locale
}
