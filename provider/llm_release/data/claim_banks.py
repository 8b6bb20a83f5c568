# ruff: noqa: E501
"""Hand-written banks for the claim-judge training generator (``perturb.py``).

PARAPHRASES: faithful restatements of each knowledge-base entry in other words (supported claims).
FABRICATIONS: claims the knowledge base never makes, mostly without numbers (unsupported claims).
Written for this generator only; never copied from the sandbox bot or the calibration set.
"""

from __future__ import annotations

PARAPHRASES: dict[str, tuple[str, ...]] = {
    "billing-payment-methods": (
        "You can pay with Visa, Mastercard, Amex or PayPal on any plan.",
        "Annual Business accounts may settle by bank transfer once they get an invoice.",
        "PayPal works for every plan, as do Visa, Mastercard and American Express cards.",
    ),
    "billing-plan-prices": (
        "Starter is $12 a month for each user.",
        "Pro runs $25 per user every month, and Business is $45 per user monthly.",
        "Taxes are not included in the listed prices.",
    ),
    "billing-annual-discount": (
        "Choosing yearly billing knocks 20% off what you would pay monthly.",
        "Switch to annual whenever you like under Billing > Plan; the saving starts with the next invoice.",
    ),
    "billing-invoice-download": (
        "Every invoice can be downloaded in PDF form under Billing > Invoices.",
        "The web app keeps the past 24 months of invoices, and support can send you anything older.",
    ),
    "billing-failed-payment": (
        "If a charge fails, we try your card again three times across seven days.",
        "The billing owner gets an email after every failed attempt.",
        "Should every retry fail, your workspace goes read-only until you update the card in Billing > Payment methods.",
    ),
    "billing-double-charge": (
        "The extra charge is most likely a pending hold that your bank drops within three to five business days.",
        "When both charges have actually posted, we refund the duplicate and it lands back on your card in 5-10 business days.",
    ),
    "billing-tax-vat": (
        "Customers in the EU and UK are charged VAT on their invoices.",
        "VAT-registered companies can add their VAT number under Billing > Tax details so the reverse charge applies from the next invoice.",
    ),
    "billing-change-plan": (
        "An upgrade applies straight away, and you only pay the prorated difference for the rest of the period.",
        "A downgrade kicks in when the next billing cycle begins, so you keep your current features until then.",
    ),
    "billing-dispute": (
        "Let me put you through to an agent on our billing team to go over the disputed charge.",
        "Disputes get reviewed within two business days and the result is sent to you by email.",
    ),
    "billing-chargeback": (
        "I'm passing you to a support agent on the payments team, since that team handles chargebacks itself.",
        "Your workspace stays active while the chargeback is open, and the team will be in touch within 2 business days.",
    ),
    "refunds-window": (
        "You can get a refund on monthly subscriptions and store purchases for up to thirty days after buying.",
        "Past the 30-day mark refunds are not available, though you can cancel anytime so you are not charged again.",
    ),
    "refunds-annual": (
        "Annual plans can be fully refunded in the first 14 days after purchase or renewal.",
        "After those 14 days an annual plan can't be refunded, but switching off auto-renewal lets it end at the close of the term.",
    ),
    "refunds-processing-time": (
        "Once a refund is approved, the money goes back to the card or account you paid with in 5 to 10 business days.",
        "Your bank decides the exact day, and we email you a confirmation when the refund is sent.",
    ),
    "refunds-hardware-return": (
        "Hardware that hasn't been opened can be sent back within 30 days of arrival through the return form on the Orders page.",
        "Defective items ship back for free; for anything else we take an $8 return shipping fee off the refund.",
    ),
    "refunds-account-credit": (
        "Our support team can credit your account with as much as $50 when a service issue affected you.",
        "Bigger credits require a manager to approve them, and an agent can ask on your behalf.",
    ),
    "refunds-digital-addons": (
        "Once you activate an add-on or software license, it can't be refunded.",
        "If the add-on is not activated yet, remove it under Billing > Add-ons and you won't be charged for it.",
    ),
    "refunds-escalation": (
        "I'll hand you over to a support agent who will send your refund request to a team lead to review.",
        "Only a manager can approve an exception beyond the 30-day window.",
    ),
    "shipping-times": (
        "Inside the US, standard delivery takes five to seven business days.",
        "If you pick express at checkout, it arrives in two business days.",
    ),
    "shipping-cost": (
        "Orders above $75 ship free with standard shipping.",
        "Below $75, standard shipping is a flat $6.95.",
    ),
    "shipping-international": (
        "We deliver to 30 countries, and shipping abroad takes 10 to 15 business days.",
        "The recipient pays any customs duties and import taxes when the parcel arrives.",
    ),
    "shipping-tracking": (
        "A tracking link is emailed to you within 24 hours after your order ships.",
        "You can also find the tracking number for every order on the Orders page.",
    ),
    "shipping-lost-package": (
        "When tracking hasn't moved in 10 business days, we consider the parcel lost and send a replacement free of charge.",
        "Please report it on the Orders page so we can file a claim with the carrier.",
    ),
    "shipping-damaged": (
        "Let us know about damaged items within 48 hours of delivery, with photos of the item and its packaging.",
        "After we review the report, a replacement is shipped at no cost to you.",
    ),
    "shipping-address-change": (
        "The shipping address can be edited on the Orders page for one hour after you place the order.",
        "Once that hour has passed the order is at the warehouse and the address can't be changed anymore.",
    ),
    "account-reset-password": (
        "Use the Forgot password link on the sign-in page and we'll email you a link to reset it.",
        "The reset link works for 60 minutes, so ask for a new one if it has expired.",
    ),
    "account-change-email": (
        "You can update your email address under Settings > Profile.",
        "We email a confirmation link to the new address and the change applies once you click it.",
    ),
    "account-add-users": (
        "Admins of a workspace can invite people from Settings > Team.",
        "Each added seat is charged from the day it is added, prorated for the current billing period.",
    ),
    "account-close": (
        "Only the account owner can close the account, under Settings > Account > Close account.",
        "We hold your data for 30 days in case you change your mind, and after that it is permanently deleted.",
    ),
    "account-closure-dispute": (
        "I'll put you in touch with a support agent from the Trust & Safety team who can explain the decision and look at an appeal.",
        "An appeal is reviewed within three business days.",
    ),
    "account-data-export": (
        "Workspace admins can export all of the workspace data from Settings > Data > Export.",
        "The export is packaged as a ZIP file, and you get a download link by email within 24 hours.",
    ),
    "account-locked": (
        "Five failed sign-in attempts lock the account for 15 minutes.",
        "Wait fifteen minutes and try again, or reset your password to unlock the account right away.",
    ),
    "security-two-factor": (
        "Two-factor authentication is turned on under Settings > Security with an authenticator app or a hardware security key.",
        "We don't support SMS codes, because text messages can be intercepted.",
    ),
    "security-phishing": (
        "Northwind Cloud never asks for your password or payment details over email or chat.",
        "Forward any suspicious message to security@northwindcloud.com and don't click the links in it.",
    ),
    "security-compromised-account": (
        "Reset your password right now and sign out every session from Settings > Security.",
        "I'll connect you to an agent on our security team to look into the unusual activity.",
    ),
    "security-certifications": (
        "We are certified for SOC 2 Type II and ISO 27001.",
        "Your data is encrypted with AES-256 at rest and with TLS 1.2 or newer in transit.",
    ),
    "technical-api-rate-limits": (
        "On Pro the API accepts 600 requests a minute, and on Business 1,200 requests a minute.",
        "Go over the limit and you get an HTTP 429 response with a Retry-After header that says when to try again.",
    ),
    "technical-status-page": (
        "Service status and incident updates are posted on status.northwindcloud.com.",
        "You can subscribe on that page to receive email or SMS alerts about incidents.",
    ),
    "technical-integrations": (
        "Northwind Cloud connects with Slack, Salesforce, Google Drive and Zapier.",
        "An admin can switch integrations on from Settings > Integrations.",
    ),
    "technical-browser-support": (
        "The web app works on the two most recent versions of Chrome, Firefox, Safari and Edge.",
        "Internet Explorer isn't supported.",
    ),
    "technical-desktop-sync": (
        "Check that the desktop app is version 4.2 or newer, then sign out and sign back in to restart syncing.",
        "If files still won't sync, clear the app cache under Preferences > Advanced.",
    ),
    "legal-threat": (
        "I'm going to connect you with a support agent who will forward your case to our legal team.",
        "You can also email legal@northwindcloud.com directly.",
    ),
    "legal-gdpr-request": (
        "Email your data access or deletion request to privacy@northwindcloud.com from the address on your account.",
        "We answer GDPR requests within thirty days.",
    ),
    "legal-liability-terms": (
        "Section 9 of the Terms of Service governs liability and caps it at the fees paid in the 12 months before a claim.",
        "For a specific claim, please write to legal@northwindcloud.com.",
    ),
    "legal-sla": (
        "Business includes an SLA of 99.9% monthly uptime.",
        "If we fall short, you get service credits worth 10% of the monthly fee for every 0.1% under target, capped at 30% of the monthly fee.",
    ),
    "escalation-human-agent": (
        "Let me connect you with a support agent right now.",
        "Live agents work Monday-Friday from 8am-8pm Eastern Time; outside those hours you'll get an email reply the next business day.",
    ),
    "escalation-formal-complaint": (
        "I'll pass you to a support agent who will record your formal complaint and give you a reference number.",
        "You'll get a written response to the complaint within five business days.",
    ),
    "escalation-business-outage": (
        "I'm connecting you with a support agent from our priority support team right away.",
        "Priority tickets on the Business plan get a first response within one hour, around the clock.",
    ),
}

# Invented claims, by theme. "{topic}" is filled with a word of the entry's category so that the claim
# reads like part of the answer while stating something the knowledge base never says.
FABRICATIONS: tuple[str, ...] = (
    "We also accept Apple Pay and Google Pay.",
    "You can pay with Bitcoin or other cryptocurrencies as well.",
    "Payments by cheque are accepted for every plan.",
    "Klarna lets you split any payment into instalments.",
    "Northwind Cloud also integrates with Microsoft Teams and HubSpot.",
    "There is a native Jira integration as well.",
    "We are HIPAA compliant and FedRAMP authorised.",
    "Our platform is certified under PCI DSS Level 1.",
    "A dedicated account manager will handle your {topic} personally.",
    "Your {topic} request is first reviewed by our fraud prevention department.",
    "You will need to upload a photo ID before we can process the {topic}.",
    "Our returns centre in Dublin processes every {topic} case.",
    "The {topic} is handled by our office in Singapore.",
    "Loyal customers get priority handling of their {topic}.",
    "You can also request this by calling our hotline.",
    "You will receive a gift card as an apology.",
    "Premium members can skip the {topic} review entirely.",
    "We send a printed confirmation letter by post.",
    "The mobile app can do this too, under the Wallet tab.",
    "Our compliance officer must sign off on every {topic}.",
    "A courier will collect the item from your home.",
    "This option is only available to customers in Canada.",
    "We also offer a lifetime plan with a single payment.",
    "Students and non-profits get the Business plan for free.",
    "Your {topic} is also protected by our satisfaction guarantee.",
    "The change is confirmed by a text message to your phone.",
    "You can also chat with our virtual assistant on WhatsApp.",
    "Our engineers will audit your workspace before any {topic}.",
    "Every {topic} case gets a free consultation with a specialist.",
    "Enterprise customers receive an on-site visit from our team.",
    "You also get a 15% loyalty discount on your next invoice.",
    "We add a $10 goodwill credit automatically.",
    "The process usually finishes within 2 hours.",
    "Customers with more than 3 seats get a free upgrade.",
)

TOPICS: dict[str, tuple[str, ...]] = {
    "billing": ("billing", "payment", "invoice"), "refunds": ("refund", "return", "credit"),
    "shipping": ("shipment", "delivery", "order"), "account": ("account", "workspace", "sign-in"),
    "security": ("security", "account", "login"), "technical": ("setup", "integration", "sync"),
    "legal": ("legal", "request", "claim"), "escalation": ("complaint", "ticket", "case"),
}
